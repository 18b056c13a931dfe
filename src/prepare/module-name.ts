// A module's name, as in NAME.backup / NAME.restore, in the config's [modules] lists and as spool folder.
export const MODULE_NAME = /^[a-z0-9][a-z0-9_-]*$/;
