// The History tab's transcript (tingji/ui/transcript.py renders it): run as the js_on_load of
// its gr.HTML, with `element` (the component), `props`, `trigger` and `server` (the Python
// function `correct`) in scope. Listeners sit on `element`, so they outlive every re-render.
(() => {
  const root = () => element.querySelector(".tj-transcript");
  const audio = () => document.getElementById("tj-hist-audio");
  let stopAt = null; // where a speaker's sample ends
  let playing = null;

  function playFrom(start, end) {
    const player = audio();
    if (!player) return;
    stopAt = end === undefined ? null : end;
    const go = () => {
      player.currentTime = start;
      player.play().catch(() => {});
    };
    if (player.readyState >= 1) go();
    else player.addEventListener("loadedmetadata", go, { once: true });
  }

  function mark(time) {
    let current = null;
    for (const seg of element.querySelectorAll(".tj-seg")) {
      if (time >= +seg.dataset.start && time < +seg.dataset.end) current = seg;
    }
    if (current === playing) return;
    if (playing) playing.classList.remove("tj-playing");
    playing = current;
    if (current) {
      current.classList.add("tj-playing");
      if (!element.querySelector(".tj-seg-editor")) current.scrollIntoView({ block: "nearest" });
    }
  }

  if (!window.tjTranscriptClock) {
    // media events do not bubble: listen on the document while capturing
    window.tjTranscriptClock = true;
    document.addEventListener(
      "timeupdate",
      (event) => {
        if (event.target.id !== "tj-hist-audio") return;
        window.dispatchEvent(new CustomEvent("tj-hist-time", { detail: event.target.currentTime }));
      },
      true,
    );
  }
  window.addEventListener("tj-hist-time", (event) => {
    const time = event.detail;
    if (stopAt !== null && time >= stopAt) {
      stopAt = null;
      audio()?.pause();
    }
    mark(time);
  });

  function openEditor(seg) {
    const box = root();
    if (!box || seg.querySelector(".tj-seg-editor")) return;
    const editor = document.createElement("div");
    editor.className = "tj-seg-editor";
    const who = document.createElement("input");
    who.className = "tj-edit-speaker";
    who.setAttribute("list", "tj-hist-speaker-list");
    who.setAttribute("aria-label", box.dataset.speaker);
    who.placeholder = box.dataset.speaker;
    who.value = seg.dataset.speaker || "";
    who.maxLength = 64;
    const text = document.createElement("textarea");
    text.className = "tj-edit-text";
    text.setAttribute("aria-label", box.dataset.text);
    text.rows = 2;
    text.maxLength = 2000;
    text.value = seg.querySelector(".tj-seg-text").textContent;
    const save = document.createElement("button");
    save.className = "tj-edit-save";
    save.textContent = box.dataset.save;
    const cancel = document.createElement("button");
    cancel.className = "tj-edit-cancel";
    cancel.textContent = box.dataset.cancel;
    const problem = document.createElement("span");
    problem.className = "tj-edit-error";
    problem.setAttribute("role", "alert");
    if (!seg.dataset.speaker) who.style.display = "none"; // speakers were not told apart
    editor.append(who, text, save, cancel, problem);
    seg.append(editor);
    seg.classList.add("tj-editing");
    text.focus();
  }

  function closeEditor(seg) {
    seg.querySelector(".tj-seg-editor")?.remove();
    seg.classList.remove("tj-editing");
  }

  function saveEditor(seg) {
    const editor = seg.querySelector(".tj-seg-editor");
    if (!editor) return;
    const text = editor.querySelector(".tj-edit-text");
    const who = editor.querySelector(".tj-edit-speaker");
    const save = editor.querySelector(".tj-edit-save");
    if (save.disabled) return;
    send(seg, "edit", text.value, who.value, editor.querySelector(".tj-edit-error"), save);
  }

  async function send(seg, action, text, speaker, problem, button) {
    const box = root();
    if (button) {
      button.disabled = true;
      button.textContent = box.dataset.saving;
    }
    const query = document.querySelector("#tj-hist-query textarea, #tj-hist-query input");
    let answer;
    try {
      answer = await server.correct(
        +box.dataset.entry,
        +seg.dataset.i,
        action,
        text,
        speaker,
        box.dataset.lang,
        query ? query.value : "",
      );
    } catch (error) {
      answer = { ok: false, message: String(error && error.message ? error.message : error) };
    }
    if (answer && answer.ok) {
      const scroll = element.scrollTop;
      props.value = answer.html;
      playing = null;
      element.scrollTop = scroll;
      trigger("change");
      return;
    }
    if (button) {
      button.disabled = false;
      button.textContent = box.dataset.save;
    }
    if (problem) problem.textContent = answer ? answer.message : "";
  }

  element.addEventListener("keydown", (event) => {
    const seg = event.target.closest(".tj-seg-editor")?.closest(".tj-seg");
    if (!seg) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) saveEditor(seg);
    if (event.key === "Escape") closeEditor(seg);
  });

  element.addEventListener("click", (event) => {
    const target = event.target;
    const seg = target.closest(".tj-seg");
    const sample = target.closest(".tj-sample");
    if (sample) {
      playFrom(+sample.dataset.start, +sample.dataset.end);
      return;
    }
    if (!seg) return;
    if (target.closest(".tj-seg-editor")) {
      // Gradio patches this component's DOM in place on re-render: listeners are delegated
      // here, never set on the nodes it may reuse
      if (target.closest(".tj-edit-save")) saveEditor(seg);
      else if (target.closest(".tj-edit-cancel")) closeEditor(seg);
      return;
    }
    if (target.closest(".tj-seg-edit")) {
      openEditor(seg);
      return;
    }
    if (target.closest(".tj-seg-revert")) {
      send(seg, "revert", "", "", null, null);
      return;
    }
    playFrom(+seg.dataset.start);
  });
})();
