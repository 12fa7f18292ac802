// tingji's Live tab: the browser microphone streamed to /ws/asr in FunASR's protocol (2pass).
// 16 kHz s16le PCM goes out in 64 ms frames; partial text ("2pass-online", tingji's
// `hypothesis` field) is shown lighter and replaced as it changes, and each finished
// sentence ("2pass-offline") is added with its start and end time.
window.tjLive = (() => {
  const FRAME = 1024; // samples at 16 kHz: 64 ms
  // Browsers offer the microphone only to secure pages (https, localhost): elsewhere
  // navigator.mediaDevices is undefined, and the page shows why (.tj-no-mic-only) instead.
  const micMissing = () => !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  document.documentElement.classList.toggle("tj-no-mic", micMissing());
  let ws = null, ctx = null, node = null, source = null, media = null;
  let finals = [], partial = "", labels = {}, state = "idle";

  const out = () => document.getElementById("tj-live-out");
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const clock = (ms) => {
    const s = Math.max(0, Math.floor(ms / 1000));
    return String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
  };

  function render(note, kind) {
    const box = out();
    if (!box) return;
    let html = `<div class="tj-status tj-live-note ${kind ? "tj-" + kind : ""}" data-state="${state}">${esc(note || "")}</div>`;
    html += '<div class="tj-text tj-live-text">';
    for (const f of finals) {
      html += `<div class="tj-final"><span class="tj-time">${clock(f.start)}–${clock(f.end)}</span> ${esc(f.text)}</div>`;
    }
    if (partial) html += `<div class="tj-partial">${esc(partial)}</div>`;
    if (!finals.length && !partial) html += `<div class="tj-live-empty">${esc(labels.empty || "")}</div>`;
    html += "</div>";
    box.innerHTML = html;
  }

  function onMessage(event) {
    let msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    if (msg.error) {
      state = "error";
      render(`${labels.error || "Error"}: ${msg.error}`, "error");
      teardown();
      return;
    }
    const mode = msg.mode || "";
    if (mode.endsWith("online")) {
      partial = msg.hypothesis !== undefined ? msg.hypothesis : partial + (msg.text || "");
    } else if (msg.text) {
      const sents = msg.stamp_sents || [];
      const start = sents.length ? sents[0].start : 0;
      const end = sents.length ? sents[sents.length - 1].end : start;
      finals.push({ text: msg.text, start, end });
      partial = "";
    }
    if (msg.is_end) {
      state = "done";
      render(finals.length ? labels.saved : labels.nothing, "ok");
      teardown();
      return;
    }
    render(state === "stopping" ? labels.finishing : labels.listening);
  }

  function stopCapture() {
    if (node) { node.onaudioprocess = null; node.disconnect(); node = null; }
    if (source) { source.disconnect(); source = null; }
    if (media) { media.getTracks().forEach((t) => t.stop()); media = null; }
    if (ctx) { ctx.close(); ctx = null; }
  }

  function teardown() {
    stopCapture();
    if (ws && ws.readyState <= 1) ws.close();
    ws = null;
  }

  async function start(config) {
    const cfg = typeof config === "string" ? JSON.parse(config) : config;
    if (!cfg || state === "listening" || state === "connecting") return;
    labels = cfg.labels || {};
    finals = []; partial = ""; state = "connecting";
    if (micMissing()) {
      state = "error";
      render(labels.insecure, "error");
      return;
    }
    render(labels.connecting);
    try {
      media = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    } catch (e) {
      state = "error";
      render(`${labels.no_mic}: ${e.message || e}`, "error");
      return;
    }
    ctx = new AudioContext({ sampleRate: 16000 });
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const base = location.pathname.replace(/\/[^/]*$/, "/");
    const url = `${scheme}//${location.host}${base}ws/asr?ticket=${encodeURIComponent(cfg.ticket)}`;
    ws = new WebSocket(url, "binary");
    ws.binaryType = "arraybuffer";
    ws.onmessage = onMessage;
    ws.onerror = () => { if (state !== "done") { state = "error"; render(labels.lost, "error"); } };
    ws.onclose = () => {
      if (state === "listening" || state === "stopping") {
        state = "error"; render(labels.lost, "error");
      }
      stopCapture();
    };
    ws.onopen = () => {
      ws.send(JSON.stringify({
        mode: "2pass", wav_name: cfg.wav_name, wav_format: "pcm", audio_fs: 16000,
        is_speaking: true, chunk_size: [5, 10, 5], chunk_interval: 10,
        hotwords: cfg.hotwords || "", itn: cfg.itn, language: cfg.language || undefined,
      }));
      source = ctx.createMediaStreamSource(media);
      node = ctx.createScriptProcessor(FRAME, 1, 1);
      node.onaudioprocess = (e) => {
        if (!ws || ws.readyState !== 1 || state !== "listening") return;
        const input = e.inputBuffer.getChannelData(0);
        const pcm = new Int16Array(input.length);
        for (let i = 0; i < input.length; i++) {
          const v = Math.max(-1, Math.min(1, input[i]));
          pcm[i] = v < 0 ? v * 0x8000 : v * 0x7fff;
        }
        ws.send(pcm.buffer);
      };
      source.connect(node);
      node.connect(ctx.destination);
      state = "listening";
      render(labels.listening);
    };
  }

  function stop() {
    if (state === "connecting") { state = "idle"; teardown(); render(""); return; }
    if (state !== "listening") return;
    state = "stopping";
    stopCapture();
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ is_speaking: false, is_end: true }));
    render(labels.finishing);
  }

  return { start, stop, state: () => state };
})();
