// easy-dsp's page API for custom handler types, over registerHandlerType:
//
//   dataHandlers.registerNewType("customtype", function (html, parameters) {
//     html.append(JSON.stringify(parameters));          // html: the tab's DOM element
//     return { newData(data) { /* every send_data */ } };
//   });
//
// As on the original page, the function is called with `new` (so a function
// returning an object and a constructor both work), `html` is a plain DOM
// element and the object's `newData(data)` receives every message. The page
// has no jQuery, lodash or d3: such files need plain DOM code instead.
export function installDataHandlers(registerHandlerType, target) {
  const dataHandlers = {
    registerNewType(type, handler) {
      if (typeof handler !== "function") {
        throw new TypeError(`dataHandlers.registerNewType("${type}", handler): handler must be a function (html, parameters)`);
      }
      registerHandlerType(type, (container, parameters) => {
        // Arrow functions cannot be called with `new`; they are called plainly.
        const made = handler.prototype ? new handler(container, parameters) : handler(container, parameters);
        if (!made || (typeof made.newData !== "function" && typeof made.update !== "function")) {
          throw new TypeError(`the handler of ${type} returned no object with newData(data)`);
        }
        return made;
      });
    },
  };
  target.dataHandlers = dataHandlers;
  return dataHandlers;
}
