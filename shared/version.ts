import pkg from "../package.json" with { type: "json" };

/** The platform version every worker reports (one package.json for the repo). */
export const VERSION: string = pkg.version;
