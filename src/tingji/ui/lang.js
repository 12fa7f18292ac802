// The page language beyond tingji's own texts (which the server writes in it):
// - kept across reloads: the switch's choice is saved in localStorage and put in the URL
//   (?lang=), and a page opened without ?lang= comes back with the saved one;
// - Gradio's own texts ("Drop File Here", "Record", toasts) follow it, not the browser's
//   locale: Gradio reads navigator.language when it starts, which this script (written first
//   into the page by tingji/ui/early.py) answers with the page's language; after a switch
//   they change with the next load, which the URL and the saved choice carry;
// - elements with data-zh / data-en (texts drawn once, like placeholders) are rewritten.
(() => {
  const KEY = "tingji-lang";
  const params = new URLSearchParams(location.search);
  const saved = (() => {
    try {
      return localStorage.getItem(KEY);
    } catch (e) {
      return null;
    }
  })();
  if (!params.has("lang") && (saved === "zh" || saved === "en")) {
    params.set("lang", saved);
    location.replace(`${location.pathname}?${params}${location.hash}`);
    return;
  }
  let current = params.get("lang") === "en" ? "en" : "zh";
  // Gradio picks its texts' locale from the browser's when it starts (this runs before it):
  // let it find the page's language there instead
  const locale = current === "en" ? "en" : "zh-CN";
  try {
    Object.defineProperty(navigator, "language", { get: () => locale, configurable: true });
    Object.defineProperty(navigator, "languages", { get: () => [locale], configurable: true });
  } catch (e) {}

  function relabel(lang) {
    for (const node of document.querySelectorAll("[data-zh][data-en]")) {
      const text = node.dataset[lang];
      if (node.textContent !== text) node.textContent = text; // (no mutation, no loop)
    }
  }

  function apply(lang) {
    current = lang;
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    relabel(lang);
  }

  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!input.closest || !input.closest("#tj-lang") || !input.checked) return;
    const lang = input.value === "en" ? "en" : "zh";
    try {
      localStorage.setItem(KEY, lang);
    } catch (e) {}
    const query = new URLSearchParams(location.search);
    query.set("lang", lang);
    history.replaceState(null, "", `${location.pathname}?${query}${location.hash}`);
    apply(lang);
  });

  // once Gradio has drawn the page; and texts drawn later (placeholders) are relabelled too
  const ready = setInterval(() => {
    if (!document.getElementById("tj-tabs")) return;
    clearInterval(ready);
    apply(current);
    new MutationObserver(() => relabel(current)).observe(document.body, {
      childList: true,
      subtree: true,
    });
  }, 100);
})();
