// The page language beyond tingji's own texts (which the server writes in it):
// - kept across reloads: the switch's choice is saved in localStorage and put in the URL
//   (?lang=), and a page opened without ?lang= comes back with the saved one;
// - Gradio's own texts ("Drop File Here", "Record", "Clear": those Gradio translates) follow
//   it, not the browser's locale: Gradio reads navigator.language when it starts, which this script (written first
//   into the page by tingji/ui/early.py) answers with the page's language;
// - a switch changes them at once, the page kept as it is: Gradio's own i18n module (the one
//   its Settings panel changes the language with; early.py finds it in the installed Gradio
//   and names it in GRADIO_I18N) sets its locale, so what Gradio draws from then on is in the
//   new language, and the texts it drew already are put into it from Gradio's own catalogues
//   (Gradio 6 draws them once: they do not follow its locale). Should a Gradio release lack
//   that module, a page that holds nothing of the user's yet is reloaded in the new language;
//   one that does keeps Gradio's texts until the next load;
// - elements with data-zh / data-en (texts drawn once, like placeholders) are rewritten.
(() => {
  const KEY = "tingji-lang";
  const GRADIO_I18N = "__TINGJI_GRADIO_I18N__"; // its path under Gradio's root, or null
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
  const localeOf = (lang) => (lang === "en" ? "en" : "zh-CN");
  // Gradio picks its texts' locale from the browser's when it starts (this runs before it):
  // let it find the page's language there instead
  try {
    Object.defineProperty(navigator, "language", {
      get: () => localeOf(current),
      configurable: true,
    });
    Object.defineProperty(navigator, "languages", {
      get: () => [localeOf(current)],
      configurable: true,
    });
  } catch (e) {}

  function relabel(lang) {
    for (const node of document.querySelectorAll("[data-zh][data-en]")) {
      const text = node.dataset[lang];
      if (node.textContent !== text) node.textContent = text; // (no mutation, no loop)
    }
  }

  // --- Gradio's own texts -------------------------------------------------------------------
  let shown = localeOf(current); // the locale Gradio's texts are in
  let gradio = null; // the promise of {changeLocale, catalogues} (null in it: not to be had)

  function flatten(messages, prefix = "", into = {}) {
    for (const [key, value] of Object.entries(messages || {})) {
      if (value && typeof value === "object") flatten(value, `${prefix}${key}.`, into);
      else if (typeof value === "string") into[prefix + key] = value;
    }
    return into;
  }

  function gradioI18n() {
    gradio ??= (async () => {
      if (!GRADIO_I18N) return null;
      // the very URL Gradio loaded it from (one module, one locale), else where it lies
      const url =
        performance
          .getEntriesByType("resource")
          .map((entry) => entry.name)
          .find((name) => new URL(name).pathname.endsWith(`/${GRADIO_I18N}`)) ||
        new URL(GRADIO_I18N, document.baseURI).href;
      const module = await import(url);
      const { changeLocale, process_langs: langs } = module;
      if (typeof changeLocale !== "function" || typeof langs !== "function") return null;
      const all = langs();
      const catalogue = async (locale) => {
        const entry = all[locale];
        if (!entry) return {};
        const data = typeof entry.data === "function" ? await entry.data() : entry.data;
        return flatten(data && data.default ? data.default : data);
      };
      const [en, zh] = await Promise.all([catalogue("en"), catalogue("zh-CN")]);
      return { changeLocale, catalogues: { en, "zh-CN": zh } };
    })().catch(() => null);
    return gradio;
  }

  // Gradio's texts as shown in one locale -> the same texts in another (a locale lacking a
  // text shows Gradio's English one, as Gradio does); texts with {placeholders} are left out
  function translations(catalogues, from, to) {
    const inLocale = (locale, key) => catalogues[locale][key] ?? catalogues.en[key];
    const keys = new Set([...Object.keys(catalogues.en), ...Object.keys(catalogues["zh-CN"])]);
    const map = new Map();
    for (const key of keys) {
      if (key.startsWith("_")) continue; // (the language's own name)
      const before = inLocale(from, key);
      const after = inLocale(to, key);
      if (!before || !after || before === after || before.includes("{")) continue;
      // one text for several keys: the common one (what Gradio picks for a plain string)
      if (!map.has(before) || key.startsWith("common.")) map.set(before, after);
    }
    return map;
  }

  // not Gradio's: tingji's texts, the switch, what people wrote or said (Markdown and HTML
  // output, table cells, text fields)
  const THEIRS = "#tj-lang, [data-zh], .prose, .html-container, td, textarea, [contenteditable]";
  const ATTRIBUTES = ["aria-label", "title", "placeholder"];
  const EDGES = /^([^\p{L}\p{N}]*)(.*?)([^\p{L}\p{N}]*)$/su; // "- 或 -": "或" with its dashes

  function retold(map, text) {
    const body = text.trim();
    if (!body) return null;
    if (map.has(body)) return text.replace(body, () => map.get(body));
    const [, before, core, after] = text.match(EDGES);
    return core && map.has(core) ? before + map.get(core) + after : null;
  }

  function retell(map) {
    const walker = document.createTreeWalker(
      document.body,
      NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT,
      (node) =>
        node.nodeType === Node.ELEMENT_NODE &&
        (node.matches(THEIRS) || ["SCRIPT", "STYLE"].includes(node.nodeName))
          ? NodeFilter.FILTER_REJECT
          : NodeFilter.FILTER_ACCEPT,
    );
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.nodeType === Node.TEXT_NODE) {
        const text = retold(map, node.nodeValue);
        if (text !== null) node.nodeValue = text;
        continue;
      }
      for (const name of ATTRIBUTES) {
        const value = node.getAttribute(name);
        const text = value && retold(map, value);
        if (text) node.setAttribute(name, text);
      }
    }
  }

  const settle = () => new Promise((done) => setTimeout(done, 30));

  // Gradio's texts into the page's language: false when Gradio's i18n is not to be had
  async function gradioFollows() {
    const i18n = await gradioI18n();
    if (!i18n) return false;
    const to = localeOf(current);
    const from = shown;
    if (from === to) return true;
    i18n.changeLocale(to);
    shown = to;
    await settle(); // Gradio redraws what follows its locale (svelte-i18n sets it async)
    retell(translations(i18n.catalogues, from, to));
    return true;
  }

  // anything of the user's on the page that a reload would lose: a file, typed text, results
  let touched = false;
  for (const kind of ["input", "change", "drop", "paste"]) {
    window.addEventListener(
      kind,
      (event) => {
        if (!(event.target.closest && event.target.closest("#tj-lang"))) touched = true;
      },
      true,
    );
  }
  window.addEventListener(
    "click",
    (event) => {
      const button = event.target.closest && event.target.closest("button");
      if (button && !button.closest("#tj-lang, [role=tab], .overflow-menu")) touched = true;
    },
    true,
  );

  let switching = Promise.resolve(); // one switch after the other
  function apply(lang) {
    current = lang;
    document.documentElement.lang = localeOf(lang);
    relabel(lang);
    switching = switching
      .then(gradioFollows)
      .then((followed) => {
        if (!followed && !touched && shown !== localeOf(current)) location.reload();
      })
      .catch(() => {});
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
