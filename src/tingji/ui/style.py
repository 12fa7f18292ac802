"""Look of the page: a theme that needs no web fonts (the page works offline) and a little CSS."""

from __future__ import annotations

import gradio as gr

FONTS = (
    "system-ui",
    "-apple-system",
    "Segoe UI",
    "Noto Sans CJK SC",
    "PingFang SC",
    "Microsoft YaHei",
    "Source Han Sans SC",
    "sans-serif",
)
MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Noto Sans Mono CJK SC", "monospace")


def theme() -> gr.themes.Base:
    """The Soft theme with local system fonts only (no request leaves the machine)."""
    return gr.themes.Soft(primary_hue="teal", secondary_hue="slate", font=FONTS, font_mono=MONO)


CSS = """
.gradio-container {
  width: 100% !important; max-width: 1280px !important; margin: 0 auto !important;
}
#tj-header { align-items: center; }
#tj-title h2 { margin: 0 0 2px 0; }
#tj-title p { margin: 0; color: var(--body-text-color-subdued); }
#tj-lang { justify-content: flex-end; }
#tj-lang .wrap { justify-content: flex-end; }
.tj-text {
  white-space: pre-wrap; line-height: 1.75; font-size: 1.05rem;
  padding: 34px 10px 8px 10px; min-height: 4.5em; max-height: 420px; overflow-y: auto;
  overflow-wrap: anywhere;
}
.tj-status {
  padding: 6px 10px; border-radius: 6px; border-left: 4px solid #94a3b8;
  background: rgba(148, 163, 184, .12); overflow-wrap: anywhere;
}
.tj-status.tj-ok { border-left-color: #10b981; background: rgba(16, 185, 129, .12); }
.tj-status.tj-error { border-left-color: #ef4444; background: rgba(239, 68, 68, .10); }
.tj-kv, .tj-grid {
  width: 100%; border-collapse: collapse; font-size: .95rem; margin: 0 !important;
  border: none !important;
}
.tj-kv th, .tj-kv td, .tj-grid th, .tj-grid td {
  padding: 6px 10px !important; border: none !important;
  border-bottom: 1px solid var(--border-color-primary) !important;
  text-align: left; vertical-align: top; overflow-wrap: anywhere; background: none !important;
}
.tj-kv tr, .tj-grid tr, .tj-kv tbody, .tj-grid tbody, .tj-grid thead { border: none !important; }
.tj-kv th { width: 32%; font-weight: 600; color: var(--body-text-color); }
.tj-grid th { font-weight: 600; }
.tj-text mark {
  background: #fde68a; color: #1f2937; border-radius: 3px; padding: 0 2px;
}
.tj-progress { margin: 4px 0 8px 0; }
#tj-live-out .tj-live-text { min-height: 12em; max-height: 60vh; overflow-y: auto; }
#tj-live-out .tj-final { margin: 2px 0; }
#tj-live-out .tj-time { color: var(--body-text-color-subdued); font-size: .85em;
  font-variant-numeric: tabular-nums; margin-right: 6px; }
#tj-live-out .tj-partial { color: var(--body-text-color-subdued); opacity: .75; }
#tj-live-out .tj-live-empty { color: var(--body-text-color-subdued); }
.tj-bar {
  height: 14px; border-radius: 7px; background: var(--neutral-200); overflow: hidden;
}
.tj-bar > div {
  height: 100%; background: var(--color-accent); transition: width .3s ease;
}
.tj-progress .tj-meta {
  display: flex; flex-wrap: wrap; gap: 4px 16px; margin-top: 6px;
  font-size: .92rem; color: var(--body-text-color-subdued);
}
.tj-progress .tj-meta b { color: var(--body-text-color); }
.tj-confirm { border: 1px solid #fca5a5; border-radius: 8px; gap: 8px;
  padding: 10px; background: rgba(239, 68, 68, .06); }
#tj-hist-player audio { width: 100%; }
.tj-player-none, .tj-transcript.tj-empty, .tj-transcript .tj-empty {
  color: var(--body-text-color-subdued); padding: 6px 2px; }
.tj-hint p { font-size: .88rem; color: var(--body-text-color-subdued); margin: 0; }
.tj-transcript { line-height: 1.7; font-size: 1rem; }
.tj-people { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center;
  padding: 4px 2px 8px 2px; border-bottom: 1px solid var(--border-color-primary); }
.tj-person { display: inline-flex; align-items: center; gap: 4px; }
.tj-talk { color: var(--body-text-color-subdued); font-size: .85em; }
.tj-sample, .tj-seg-edit, .tj-seg-revert, .tj-seg-editor button {
  border: 1px solid var(--border-color-primary); border-radius: 6px; background: none;
  cursor: pointer; padding: 0 6px; font-size: .85em; line-height: 1.6; color: inherit; }
.tj-seg { padding: 5px 6px; border-radius: 6px; cursor: pointer; position: relative;
  overflow-wrap: anywhere; }
.tj-seg:hover { background: rgba(148, 163, 184, .12); }
.tj-seg.tj-playing { background: rgba(20, 184, 166, .16);
  box-shadow: inset 3px 0 0 var(--color-accent); }
.tj-seg-time { color: var(--body-text-color-subdued); font-size: .85em; margin-right: 6px;
  font-variant-numeric: tabular-nums; }
.tj-seg-spk { font-weight: 600; margin-right: 6px; }
.tj-seg-spk::after { content: "："; }
.tj-seg-edit { margin-left: 6px; opacity: .55; }
.tj-seg:hover .tj-seg-edit, .tj-seg-edit:focus { opacity: 1; }
.tj-seg mark { background: #fde68a; color: #1f2937; border-radius: 3px; padding: 0 2px; }
.tj-seg-orig { font-size: .85em; color: var(--body-text-color-subdued); margin-top: 2px; }
.tj-badge { background: rgba(245, 158, 11, .18); color: #92400e; border-radius: 4px;
  padding: 0 5px; font-size: .9em; }
.tj-seg-editor { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 6px; cursor: auto; }
.tj-seg-editor textarea { flex: 1 1 100%; min-height: 3em; font: inherit; padding: 4px 6px;
  border: 1px solid var(--border-color-primary); border-radius: 6px;
  background: var(--input-background-fill); color: inherit; }
.tj-seg-editor input { width: 10em; font: inherit; padding: 2px 6px; color: inherit;
  border: 1px solid var(--border-color-primary); border-radius: 6px;
  background: var(--input-background-fill); }
.tj-edit-error { color: #dc2626; flex: 1 1 100%; }
/* the main action right under what it acts on, before the options: on the first screen */
#tj-single-file, #tj-batch-files { order: -2; }
#tj-single-run, #tj-batch-actions { order: -1; }
/* a header is not cut inside a word */
th, th * { word-break: keep-all !important; overflow-wrap: normal !important; }
.file-preview td, .file-preview td * { word-break: break-all; white-space: normal; }
@media (max-width: 640px) {
  .gradio-container { padding: 6px !important; }
  #tj-title h2 { font-size: 1.2rem; }
  #tj-title p { display: none; }
  /* all six tabs on the bar (not in an overflow menu) */
  #tj-tabs .tab-container button { padding: 6px 4px; font-size: .82rem; min-width: 0; }
  #tj-tabs .tab-container { gap: 0; }
}
"""
