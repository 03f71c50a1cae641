// Handler types the user keeps on the device (`handlers/` in the data
// directory): listed by /api/v1/handler-files and loaded with the page from
// /handlers/<name>, same origin, so the page's security policy allows them.
// A `.js` file runs as a classic script, like easy-dsp's js/myHandlers.js
// (it may call dataHandlers.registerNewType or window.micarray.registerHandlerType);
// a `.mjs` file is imported as a module.
const LIST_URL = "/api/v1/handler-files";

function classicScript(url) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = url;
    script.async = false;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error(`${url} could not be loaded`));
    document.head.append(script);
  });
}

/**
 * Load every user file; resolves to `{loaded: [names], failed: [{name, error}]}`.
 * A file that throws while it runs is reported by the browser as a page error,
 * with its own file name and line.
 */
export async function loadUserHandlerTypes(loadModule) {
  const response = await fetch(LIST_URL, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`listing the handler files failed: HTTP ${response.status}`);
  const { files } = await response.json();
  const result = { loaded: [], failed: [] };
  for (const name of files) {
    const url = `/handlers/${encodeURIComponent(name)}`;
    try {
      if (name.endsWith(".mjs")) await loadModule(url);
      else await classicScript(url);
      result.loaded.push(name);
    } catch (error) {
      result.failed.push({ name, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return result;
}
