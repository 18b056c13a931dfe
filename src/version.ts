// Recorded in every manifest, so a dump says which drkit wrote it.
export const DRKIT_VERSION = '0.1.0';
