"""Tab 6, 系统 / System: the machine, the loaded model, model and device choice, freeing memory."""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

from tingji.errors import TingjiError
from tingji.service import MemoryReport, Tingji
from tingji.types import ClusterInfo
from tingji.ui.common import (
    grid_table,
    kv_table,
    message,
    model_choices,
    model_picker,
    status_line,
)
from tingji.ui.i18n import Lazy, T, t
from tingji.ui.page import Page

DEVICES = ("auto", "cpu", "cuda", "mps")
SHOWN_LIBRARIES = ("tingji", "faster-whisper", "ctranslate2", "onnxruntime", "funasr", "torch")


def info_table(service: Tingji, lang: str) -> str:
    """The machine and the loaded model, as label/value rows."""
    info = service.system()
    loaded = service.models.loaded()
    rows: list[tuple[str, str]] = []
    if loaded:
        model = loaded[0]
        rows.append((t("sys.active", lang), f"{model.name} · {model.backend}"))
        rows.append((t("sys.device", lang), f"{model.device} ({model.compute_type})"))
        rows.append((t("sys.path", lang), model.path))
        if model.device_reason:
            rows.append((t("sys.device_reason", lang), device_reason(model.device_reason, lang)))
    else:
        waiting = t("sys.none_loaded", lang, model=service.settings.model)
        rows.append((t("sys.active", lang), waiting))
        rows.append((t("sys.device", lang), service.models.device))
    gpus = [
        t(
            "sys.gpu.value",
            lang,
            name=g.name,
            used=_mb(g.memory_used_mb),
            total=_mb(g.memory_total_mb),
        )
        for g in info.gpus
    ]
    if not gpus and info.cuda_devices:
        gpus = [f"CUDA × {info.cuda_devices}"]
    rows.append((t("sys.gpu", lang), "; ".join(gpus) or t("sys.no_gpu", lang)))
    cpu = f"{info.cpu_model} · {t('sys.cores', lang, cores=info.cpu_cores)}"
    rows.append((t("sys.cpu", lang), cpu))
    ram = t("sys.ram.value", lang, free=info.ram_available_mb, total=info.ram_total_mb)
    rows.append((t("sys.ram", lang), ram))
    rows.append((t("sys.rss", lang), _mb(info.process_rss_mb)))
    rows.append((t("sys.queue", lang), str(service.queue_length())))
    rows += cluster_rows(service.cluster(), lang)
    wal = service.history.wal_state()
    db = t("sys.db.repaired", lang, n=wal.repairs) if wal.repairs else t("sys.db.ok", lang)
    rows.append((t("sys.database", lang), db))
    versions = [f"{k} {v}" for k, v in info.libraries.items() if k in SHOWN_LIBRARIES]
    rows.append((t("sys.versions", lang), " · ".join([f"Python {info.python}", *versions])))
    return kv_table(rows)


def cluster_rows(info: ClusterInfo | None, lang: str) -> list[tuple[str, str]]:
    """The Ray cluster batch jobs run on, and a row per node; none without a cluster."""
    if info is None:
        return []
    if info.error is not None:
        down = t("sys.cluster.down", lang, address=info.address, error=info.error)
        return [(t("sys.cluster", lang), down)]
    summary = t(
        "sys.cluster.value",
        lang,
        address=info.address,
        alive=sum(n.alive for n in info.nodes),
        total=len(info.nodes),
        cpus=f"{info.cpus:g}",
        gpus=f"{info.gpus:g}",
        models=info.models,
        running=info.running,
    )
    rows = [(t("sys.cluster", lang), summary)]
    for node in sorted(info.nodes, key=lambda n: (not n.alive, not n.head, n.name)):
        state = "sys.node.head" if node.head and node.alive else "sys.node.up"
        value = t(
            "sys.node.value",
            lang,
            state=t(state if node.alive else "sys.node.down", lang),
            address=node.address,
            cpus=f"{node.cpus:g}",
            gpus=f"{node.gpus:g}",
        )
        rows.append((f"· {node.name}", value))
    return rows


def release_table(report: MemoryReport, lang: str) -> str:
    """Memory before and after unloading the models."""
    models = ", ".join(f"{m.name} ({m.device})" for m in report.unloaded)
    rows = [
        [t("sys.rel.rss", lang), _mb(report.rss_before_mb), _mb(report.rss_after_mb)],
        [t("sys.rel.gpu", lang), _mb(report.gpu_used_before_mb), _mb(report.gpu_used_after_mb)],
        [t("sys.rel.models", lang), models or t("sys.rel.none", lang), "–"],
    ]
    header = [t("sys.released", lang), t("sys.before", lang), t("sys.after", lang)]
    return grid_table(header, rows)


def _mb(value: int | None) -> str:
    return "–" if value is None else f"{value} MB"


def build(page: Page) -> None:
    tr = page.tr
    service = page.service
    with tr(gr.Tab, label=T("tab.system"), id="system") as tab, gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            info = gr.HTML(elem_id="tj-sys-info")
            refresh = tr(gr.Button, value=T("sys.refresh"), size="md", elem_id="tj-sys-refresh")
        with gr.Column(scale=2, min_width=280):
            tr(gr.Markdown, value=Lazy(lambda lang: f"### {t('sys.model_title', lang)}"))
            model = model_picker(service, tr, "sys.model")
            device = tr(
                gr.Dropdown,
                label=T("sys.device"),
                choices=list(DEVICES),
                value=service.models.device,
            )
            apply = tr(gr.Button, value=T("sys.apply"), variant="primary", elem_id="tj-sys-apply")
            status = gr.Markdown(elem_id="tj-sys-status")
            release = tr(
                gr.Button, value=T("sys.release"), variant="stop", elem_id="tj-sys-release"
            )
            released = gr.HTML(elem_id="tj-sys-released")
    pickers = page.model_pickers

    def show(lang: str) -> str:
        return info_table(service, lang)

    def use(name: str, where: str, lang: str) -> list[Any]:
        previous = service.models.device
        try:
            chosen = service.check_model(name)
            if where != previous:
                service.release_memory()
                service.models.device = where
            backend = service.backend(chosen)
        except Exception as exc:  # shown in the page, never as a traceback
            service.models.device = previous
            note = status_line(message(exc, lang), "error")
            return [note, info_table(service, lang), *[gr.skip()] * len(pickers)]
        loaded = backend.info
        note = t(
            "sys.loaded", lang, model=loaded.name, device=loaded.device, compute=loaded.compute_type
        )
        return [
            status_line(note, "ok"),
            info_table(service, lang),
            *[gr.update(value=chosen, choices=model_choices(service, lang)) for _ in pickers],
        ]

    def free(lang: str) -> tuple[str, str]:
        try:
            report = service.release_memory()
        except TingjiError as exc:
            return status_line(message(exc, lang), "error"), info_table(service, lang)
        return release_table(report, lang), info_table(service, lang)

    refresh.click(show, inputs=page.lang, outputs=info)
    tab.select(show, inputs=page.lang, outputs=info, show_progress="hidden")
    apply.click(use, inputs=[model, device, page.lang], outputs=[status, info, *pickers])
    release.click(free, inputs=page.lang, outputs=[released, info])
    page.on_load.append((show, [page.lang], [info]))


_REASONS = [
    (re.compile(r"auto: (\d+) CUDA device\(s\) found"), "sys.why.cuda"),
    (re.compile(r"auto: Apple MPS available"), "sys.why.mps"),
    (re.compile(r"auto: no CUDA GPU found.*using the CPU"), "sys.why.cpu"),
    (re.compile(r"(\w+) as requested"), "sys.why.asked"),
]


def device_reason(reason: str, lang: str) -> str:
    """The engine's reason for its device (English), in the page's language."""
    for pattern, key in _REASONS:
        found = pattern.fullmatch(reason)
        if found:
            return t(key, lang, value=found.group(1) if found.groups() else "")
    return reason
