// Starts ReDoc on /redoc. ReDoc writes <style> elements (its CSS modules as the bundle loads, styled-components
// as it renders), which the page's CSP refuses unless they carry this response's nonce. So every <style> made
// on this page gets the nonce of this script tag (readable only as a property), then the bundle is loaded.
(() => {
  const nonce = document.currentScript.nonce;
  const root = document.getElementById("redoc");
  const createElement = document.createElement.bind(document);
  document.createElement = (name, options) => {
    const element = createElement(name, options);
    if (String(name).toLowerCase() === "style") element.setAttribute("nonce", nonce);
    return element;
  };
  const bundle = createElement("script");
  bundle.src = root.dataset.bundle;
  bundle.addEventListener("load", () => Redoc.init(root.dataset.openapiUrl, {}, root));
  document.head.append(bundle);
})();
