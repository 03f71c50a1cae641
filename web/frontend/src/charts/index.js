// Handler views (tabs' charts). Filled in shortly.
const types = new Map();
export function registerHandlerType(type, factory) { types.set(type, factory); }
export function handlerTypes() { return [...types.keys()].sort(); }
