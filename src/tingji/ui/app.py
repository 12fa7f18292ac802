"""The Gradio Blocks of the workstation and their mounting at ``/`` of the FastAPI app."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import gradio as gr
from fastapi import FastAPI
from starlette.routing import Mount

from tingji.config import Settings
from tingji.service import Tingji
from tingji.ui import batch, history, hotwords, live, single, system
from tingji.ui.common import Scratch
from tingji.ui.early import EarlyScript
from tingji.ui.i18n import DEFAULT_LANG, T, Translator, lang_of, t
from tingji.ui.page import Page
from tingji.ui.style import CSS, theme
from tingji.ui.uploads import UiFiles, UploadGuard


def build(service: Tingji, files: UiFiles) -> gr.Blocks:
    """The whole page: a header with the language switch, then one tab per task."""
    tr = Translator()
    with gr.Blocks(
        title=t("app.title"),
        analytics_enabled=False,
        fill_width=True,
        delete_cache=(3600, 6 * 3600),
    ) as blocks:
        page = Page(service, tr, gr.State(DEFAULT_LANG), Scratch(files.scratch), files)
        with gr.Row(elem_id="tj-header", equal_height=True):
            with gr.Column(scale=4, min_width=240):
                title = gr.Markdown(_title(DEFAULT_LANG, service.settings), elem_id="tj-title")
            switch = tr(
                gr.Radio,
                choices=[("中文", "zh"), ("English", "en")],
                value=DEFAULT_LANG,
                label=T("app.lang"),
                show_label=False,
                container=False,
                scale=1,
                min_width=230,
                elem_id="tj-lang",
            )
        with gr.Tabs(elem_id="tj-tabs"):
            single.build(page)
            batch.build(page)
            live.build(page)
            history.build(page)
            hotwords.build(page)
            system.build(page)

        outputs = [page.lang, title, *tr.components]
        tables = tr.tables

        def relabel(lang: str, table_values: tuple[Any, ...]) -> list[Any]:
            return [lang, _title(lang, service.settings), *tr.updates(lang, table_values)]

        def on_open(request: gr.Request, *table_values: Any) -> list[Any]:
            return relabel(lang_of(request.query_params.get("lang")), table_values)

        def on_switch(choice: str, *table_values: Any) -> list[Any]:
            return relabel(lang_of(choice), table_values)

        opened = blocks.load(on_open, inputs=tables, outputs=outputs, show_progress="hidden")
        opened = opened.then(lambda lang: lang, inputs=page.lang, outputs=switch)
        switched = switch.input(
            on_switch, inputs=[switch, *tables], outputs=outputs, show_progress="hidden"
        )
        for handler, inputs, outs in page.on_load:
            opened.then(handler, inputs=inputs, outputs=outs, show_progress="hidden")
            switched.then(handler, inputs=inputs, outputs=outs, show_progress="hidden")
    return blocks


def _title(lang: str, settings: Settings) -> str:
    # audio goes to the cluster's nodes, or into a database on another machine: still yours
    shared = bool(settings.ray_address or settings.database_url)
    return (
        f"## {t('app.title', lang)}\n{t('app.subtitle.shared' if shared else 'app.subtitle', lang)}"
    )


def login_check(settings: Settings) -> Callable[[str, str], bool] | None:
    """The login rule: the UI password, else any API key; none when neither is set."""
    secrets = [settings.ui_password] if settings.ui_password else list(settings.api_keys)
    if not secrets:
        return None

    def check(username: str, password: str) -> bool:
        user_ok = hmac.compare_digest(username.encode(), settings.ui_username.encode())
        pass_ok = any(hmac.compare_digest(password.encode(), s.encode()) for s in secrets)
        return user_ok and pass_ok

    return check


def mount(app: FastAPI, service: Tingji) -> FastAPI:
    """Mount the web UI at ``/`` (after the API routes, which keep precedence).

    Its files live in ``<data_dir>/tmp/ui`` (:mod:`tingji.ui.uploads`), emptied when the app
    starts and stops; a request may name only files uploaded there, and Gradio serves
    nothing else of the data dir.
    """
    settings = service.settings
    files = UiFiles(settings.temp_dir)
    files.prepare()
    files.claim_gradio_temp()  # before the components and Gradio's app read it
    blocks = build(service, files)
    db = settings.database
    private = [settings.audio_dir, settings.model_cache, db]
    private += [db.with_name(db.name + end) for end in ("-wal", "-shm", "-journal")]
    blocked = [str(p.resolve()) for p in private if not files.root.is_relative_to(p.resolve())]
    gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=login_check(settings),
        auth_message=t("app.title"),
        footer_links=[],
        max_file_size=int(settings.max_upload_mb * 2**20),
        blocked_paths=blocked,  # never served; and nothing else of the data dir is allowed
        show_error=True,
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        pwa=False,
        theme=theme(),
        css=CSS,
        head=live.head(),
    )
    # What launch() sets and mount_gradio_app does not: Gradio's own check that inputs name
    # uploads then runs too, behind UploadGuard (which does not depend on it). It checks against
    # the process's one GRADIO_TEMP_DIR: of several apps in a process, the last started has it.
    blocks.has_launched = True
    inner = _gradio_app(app, blocks)
    inner.add_middleware(UploadGuard, files=files)
    inner.add_middleware(EarlyScript)  # the page language, before Gradio starts
    served = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(parent: FastAPI) -> AsyncIterator[Any]:
        files.prepare()
        files.claim_gradio_temp()
        try:
            async with served(parent) as state:
                yield state
        finally:
            files.cleanup()
            files.release_gradio_temp()

    app.router.lifespan_context = lifespan
    return app


def _gradio_app(app: FastAPI, blocks: gr.Blocks) -> FastAPI:
    """The application that ``mount_gradio_app`` mounted for ``blocks``."""
    for route in app.router.routes:
        inner = getattr(route, "app", None)
        if isinstance(route, Mount) and getattr(inner, "blocks", None) is blocks:
            assert isinstance(inner, FastAPI)
            return inner
    raise RuntimeError("the web UI's Gradio app is not mounted")
