// The little the pages do in the browser: the theme switch, confirmations before an action, the tile
// filter, output presets, copy buttons, and showing whether the live connection is up. No build step.
(() => {
  const root = document.documentElement;
  const saved = localStorage.getItem("theme");
  if (saved === "light" || saved === "dark") root.dataset.theme = saved;

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const themeSwitch = target?.closest("[data-theme-switch]");
    if (themeSwitch) {
      const dark = root.dataset.theme
        ? root.dataset.theme === "dark"
        : matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      localStorage.setItem("theme", root.dataset.theme);
    }
    const copy = target?.closest("[data-copy]");
    if (copy) {
      const source = document.querySelector(copy.getAttribute("data-copy"));
      if (source)
        navigator.clipboard?.writeText(source.textContent ?? "").then(() => (copy.textContent = "Copied"));
    }
    const confirmClick = target?.closest("[data-confirm-click]");
    if (confirmClick && !confirm(confirmClick.getAttribute("data-confirm-click"))) event.preventDefault();
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !confirm(form.dataset.confirm))
      event.preventDefault();
  });

  document.addEventListener("input", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.dataset.filter) return;
    const words = input.value.trim().toLowerCase();
    for (const tile of document.querySelectorAll(input.dataset.filter)) {
      tile.hidden = words !== "" && !(tile.getAttribute("data-name") ?? "").includes(words);
    }
  });

  document.addEventListener("change", (event) => {
    const select = event.target;
    if (!(select instanceof HTMLSelectElement) || !select.dataset.presets) return;
    const preset = JSON.parse(select.dataset.presets).find((candidate) => candidate.id === select.value);
    const form = select.form;
    if (!preset || !form) return;
    form.elements.namedItem("protocol").value = preset.protocol;
    form.elements.namedItem("url").value = preset.url;
    const name = form.elements.namedItem("name");
    if (!name.value) name.value = preset.label;
    const hint = form.querySelector("[data-preset-hint]");
    if (hint) hint.textContent = preset.hint;
  });

  const connection = (state, words) => {
    const badge = document.getElementById("connection");
    if (!badge) return;
    badge.className = `badge state-${state}`;
    badge.textContent = words;
  };
  document.addEventListener("htmx:wsOpen", () => connection("open", "live"));
  document.addEventListener("htmx:wsClose", () => connection("closed", "connection lost — reconnecting…"));
  document.addEventListener("htmx:wsError", () => connection("closed", "connection lost — reconnecting…"));
  // Live updates replace the tiles: the operator's selection and filter stay as they were.
  const selected = new Set();
  document.addEventListener("change", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.name !== "ids") return;
    if (box.checked) selected.add(box.value);
    else selected.delete(box.value);
  });
  // Live updates replace whole sections; keyboard focus stays on the same control: found again after the swap
  // by its id, or by the form it posts to and its name, value or text.
  const focusKey = (element) => {
    if (!(element instanceof HTMLElement) || element === document.body) return null;
    if (element.id) return `#${CSS.escape(element.id)}`;
    const form = element.closest("form");
    const own = element.getAttribute("name")
      ? `[name="${CSS.escape(element.getAttribute("name"))}"]${element.getAttribute("value") ? `[value="${CSS.escape(element.getAttribute("value"))}"]` : ""}`
      : "";
    const tag = element.tagName.toLowerCase();
    if (form?.getAttribute("action"))
      return {
        selector: `form[action="${CSS.escape(form.getAttribute("action"))}"] ${tag}${own}`,
        text: element.textContent,
      };
    if (element.getAttribute("href")) return `${tag}[href="${CSS.escape(element.getAttribute("href"))}"]`;
    if (element.dataset.copy) return `${tag}[data-copy="${CSS.escape(element.dataset.copy)}"]`;
    return null;
  };
  let focused = null;
  document.addEventListener("htmx:oobBeforeSwap", () => {
    focused ??= focusKey(document.activeElement);
  });
  document.addEventListener("htmx:oobAfterSwap", () => {
    if (
      focused !== null &&
      !(document.activeElement instanceof HTMLElement && document.activeElement !== document.body)
    ) {
      const { selector, text } = typeof focused === "string" ? { selector: focused, text: null } : focused;
      const candidates = [...document.querySelectorAll(selector)];
      const again =
        candidates.find((candidate) => text === null || candidate.textContent === text) ?? candidates[0];
      again?.focus({ preventScroll: true });
    }
    focused = null;
    for (const box of document.querySelectorAll('input[name="ids"]')) box.checked = selected.has(box.value);
    const filter = document.querySelector("input[data-filter]");
    if (filter?.value) filter.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();

// The channel page's preview: hls.js and the playlist load only when the <details> is opened; closing it
// stops the player (the service ends the preview rendition once nobody asks for it).
(() => {
  const players = new WeakMap();
  let library = null;
  const loadHls = () => {
    library ??= new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/assets/hls.min.js";
      script.onload = () => resolve(window.Hls);
      script.onerror = () => reject(new Error("could not load the player"));
      document.head.append(script);
    });
    return library;
  };
  const say = (details, text) => {
    const status = details.querySelector("[data-preview-status]");
    if (status) status.textContent = text;
  };
  document.addEventListener(
    "toggle",
    async (event) => {
      const details = event.target;
      if (!(details instanceof HTMLDetailsElement) || !details.dataset.preview) return;
      const video = details.querySelector("video");
      if (!details.open) {
        players.get(details)?.destroy();
        players.delete(details);
        video.removeAttribute("src");
        video.load();
        say(details, "");
        return;
      }
      say(details, "loading…");
      let Hls;
      try {
        Hls = await loadHls();
      } catch (error) {
        say(details, error.message);
        return;
      }
      if (!details.open || players.has(details)) return;
      if (!Hls.isSupported()) {
        say(details, "this browser cannot play HLS");
        return;
      }
      const hls = new Hls({ liveSyncDurationCount: 2, manifestLoadingMaxRetry: 4 });
      players.set(details, hls);
      let fragments = 0;
      hls.on(Hls.Events.FRAG_LOADED, () => {
        fragments += 1;
        details.dataset.fragments = String(fragments);
      });
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (data.fatal) say(details, `preview failed: ${data.details}`);
      });
      video.addEventListener("playing", () => say(details, "playing"), { once: true });
      hls.loadSource(details.dataset.preview);
      hls.attachMedia(video);
      video.play().catch(() => {});
    },
    true,
  );
})();
