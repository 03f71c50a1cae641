// JSON calls to the device's HTTP API, with the XSRF token Tornado requires.

function xsrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** Call the API; resolves to the parsed JSON, rejects with an Error carrying the server's words. */
export async function api(method, url, body) {
  const init = { method, credentials: "same-origin", headers: { "X-XSRFToken": xsrfToken() } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  let value = null;
  try { value = await response.json(); } catch { value = null; }
  if (!response.ok) {
    if (response.status === 403 && !value?.error) window.location.assign("/login");
    throw new Error(value?.error || `${method} ${url} failed: ${response.status} ${response.statusText}`);
  }
  return value;
}
