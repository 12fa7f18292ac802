"""Chinese (default) and English texts of the web UI, and the registry that relabels the page.

Every visible text has a key in :data:`TEXTS`. Components are built through a
:class:`Translator`, which creates them with the Chinese texts and remembers which keyword
holds which key, so that one event can switch the whole page to English (the in-page switch
or ``?lang=en``).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import gradio as gr

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

TEXTS: dict[str, tuple[str, str]] = {
    # page
    "app.title": ("听记 · 离线语音转写", "Tingji · offline speech to text"),
    "app.subtitle": (
        "本机识别，音频不离开这台机器。",
        "Recognised on this machine; no audio leaves it.",
    ),
    "app.subtitle.shared": (
        "在你自己的服务器上识别，音频不经过任何云服务。",
        "Recognised on your own servers; no audio goes to any cloud service.",
    ),
    "app.lang": ("界面语言", "Language"),
    "app.warning": ("注意", "Warning"),
    "tab.single": ("单文件识别", "Single file"),
    "tab.batch": ("批量处理", "Batch"),
    "tab.live": ("实时录音", "Live"),
    "tab.history": ("识别历史", "History"),
    "tab.hotwords": ("热词", "Hotwords"),
    "tab.system": ("系统", "System"),
    # shared options
    "opt.title": ("识别选项", "Options"),
    "opt.language": ("语言", "Language"),
    "opt.auto": ("自动检测", "Detect"),
    "opt.hotwords": ("热词", "Hotwords"),
    "opt.hotwords.placeholder": (
        "用逗号或换行分隔，如：达摩院，语音识别",
        "comma or newline separated, e.g. DAMO Academy, speech",
    ),
    "opt.hotword_list": ("热词表", "Hotword list"),
    "opt.no_list": ("（不用）", "(none)"),
    "opt.itn": ("数字规整（ITN）", "Normalise numbers (ITN)"),
    "opt.script": ("中文字形", "Chinese script"),
    "opt.simplified": ("简体", "Simplified"),
    "opt.traditional": ("繁体", "Traditional"),
    "opt.original": ("保持原样", "As recognised"),
    "opt.model": ("模型", "Model"),
    "opt.model.ready": ("{name}（已就绪）", "{name} (ready)"),
    "opt.model.download": (
        "{name}（首次使用需下载约 {size}）",
        "{name} (downloads about {size} when first used)",
    ),
    "opt.model.hint": (
        "内置的 base 模型小而快，适合试用和清晰的普通话、英语；中文会议请安装 "
        "paraformer-zh 或 SenseVoiceSmall（见 README 的“模型”）。",
        "The built-in base model is small and quick, for trying out and clear Mandarin or "
        "English; for Chinese meetings install paraformer-zh or SenseVoiceSmall (README, "
        "“Models”).",
    ),
    "err.model_offline": (
        "模型「{name}」不在这台机器上，也无法下载（没有网络）。请选一个“已就绪”的模型，"
        "或请管理员在能联网时运行 tingji download {name}。",
        "The model “{name}” is not on this machine and cannot be downloaded (no network). "
        "Choose a ready model, or have the operator run tingji download {name} where there "
        "is network.",
    ),
    "err.model_unknown": (
        "这台服务器不提供模型「{name}」。",
        "This server does not offer the model “{name}”.",
    ),
    "opt.diarize": ("区分说话人（谁说了什么）", "Tell speakers apart (who said what)"),
    "opt.speakers": ("说话人数", "Number of speakers"),
    "opt.speakers.auto": ("自动判断", "Find out"),
    # single file
    "single.file": ("音频或视频文件（可拖放）", "Audio or video file (drop here)"),
    "single.record": ("或者录一段", "Or record a clip"),
    "single.run": ("开始识别", "Transcribe"),
    "single.text": ("识别结果", "Text"),
    "single.copy": ("复制", "Copy"),
    "single.segments": ("分段", "Segments"),
    "single.downloads": ("下载", "Downloads"),
    "single.no_input": ("请先选择文件或录一段音。", "Choose a file or record a clip first."),
    "single.working": (
        "识别中 {done:.0f} / {total:.0f} 秒",
        "Recognising {done:.0f} / {total:.0f} s",
    ),
    "single.saving": ("正在保存上传……", "Saving the upload…"),
    "single.waiting": ("等待空闲的识别线程……", "Waiting for a free worker…"),
    "single.speakers": ("正在区分说话人……", "Telling the speakers apart…"),
    "single.done": ("完成：{name}（已存入识别历史）", "Done: {name} (saved to History)"),
    "col.start": ("开始", "Start"),
    "col.end": ("结束", "End"),
    "col.text": ("文本", "Text"),
    # details
    "det.file": ("文件", "File"),
    "det.language": ("语言", "Language"),
    "det.duration": ("音频时长", "Duration"),
    "det.processing": ("处理时间", "Processing time"),
    "det.speed": ("速度", "Speed"),
    "det.speed.value": ("{speed:.1f} 倍实时", "{speed:.1f}× real time"),
    "det.device": ("设备", "Device"),
    "det.model": ("模型", "Model"),
    "det.replacements": ("热词纠正", "Hotword corrections"),
    "det.omitted": ("已略去", "Left out"),
    "det.omitted.value": (
        "{spans}：模型在此反复重复同一句，不像语音，未写入文字",
        "{spans}: the model kept repeating itself there; no text written",
    ),
    # batch
    "batch.files": ("多个文件（可拖放）", "Files (drop several here)"),
    "batch.run": ("开始批量识别", "Start batch"),
    "batch.cancel": ("取消", "Cancel"),
    "batch.delete": ("删除任务", "Delete job"),
    "batch.delete.confirm": (
        "删除这个批量任务？未完成的文件将停止，任务记录和只属于它的音频会被删除；已完成的识别结果仍保留在识别历史中。",
        "Delete this batch job? Unfinished files stop, and the job's record and the audio only "
        "it used are removed; finished results stay in History.",
    ),
    "batch.deleted": ("任务已删除。", "The job was deleted."),
    "batch.csv": ("下载 CSV", "Download CSV"),
    "batch.zip": ("下载 ZIP", "Download ZIP"),
    "batch.results": ("结果", "Results"),
    "batch.no_files": ("请先选择要识别的文件。", "Choose the files to recognise first."),
    "batch.idle": ("尚未开始。", "Not started."),
    "batch.queued": ("排队中……", "Queued…"),
    "batch.current": ("正在识别：{name}", "Now: {name}"),
    "batch.elapsed": ("已用 {elapsed}", "elapsed {elapsed}"),
    "batch.left": ("剩余约 {left}", "about {left} left"),
    "batch.files_done": ("{done} / {total} 个文件", "{done} / {total} files"),
    "batch.finished": ("全部完成", "Finished"),
    "batch.cancelled": ("已取消", "Cancelled"),
    "batch.failed": ("全部失败", "Failed"),
    "col.file": ("文件", "File"),
    "col.status": ("状态", "Status"),
    "col.duration": ("时长", "Duration"),
    "col.result": ("文本 / 错误", "Text / error"),
    "status.queued": ("排队", "queued"),
    "status.running": ("识别中", "running"),
    "status.done": ("完成", "done"),
    "status.failed": ("失败", "failed"),
    "status.cancelled": ("已取消", "cancelled"),
    # live
    "live.hint": (
        "点击“开始”，对着麦克风说话，文字边说边出：灰色是正在识别的句子，停顿后换成校正好的整句。"
        "点击“停止”后，整段记录保存到识别历史。",
        "Press Start and speak: the text appears as you talk. The sentence in progress is grey "
        "and is replaced by the corrected sentence at each pause. Stop saves the session to "
        "history.",
    ),
    "live.start": ("开始", "Start"),
    "live.stop": ("停止", "Stop"),
    "live.name": ("实时录音 {time}", "Live {time}"),
    "live.connecting": ("正在打开麦克风……", "Opening the microphone…"),
    "live.listening": ("正在听……", "Listening…"),
    "live.finishing": ("正在识别最后一句……", "Finishing the last sentence…"),
    "live.saved": ("已停止，已保存到识别历史。", "Stopped; saved to history."),
    "live.nothing": ("已停止，没有听到语音。", "Stopped; no speech was heard."),
    "live.lost": ("与服务器的连接断开了。", "The connection to the server was lost."),
    "live.no_mic": ("无法使用麦克风", "The microphone is not available"),
    "live.insecure": (
        "麦克风不可用：浏览器只允许 https 或 localhost 页面使用麦克风。请打开服务器的 https 地址"
        "（服务器以 tingji serve --https 启动），或在服务器本机用 localhost 打开。",
        "The microphone is not available: browsers allow it only on https or localhost pages. "
        "Open the server's https address (start it with tingji serve --https), or use localhost "
        "on the server itself.",
    ),
    "live.error": ("出错了", "Error"),
    "live.empty": ("点击“开始”后，识别的文字会显示在这里。", "Press Start; the text appears here."),
    # history
    "hist.query": ("搜索", "Search"),
    "hist.speakers": ("说话人改名", "Rename a speaker"),
    "hist.speaker": ("说话人", "Speaker"),
    "hist.new_name": ("新名字（如：王经理）", "New name (e.g. Ms Wang)"),
    "hist.rename": ("改名", "Rename"),
    "hist.enrol": (
        "保存为声纹（以后的录音自动认出此人）",
        "Save as a voice (recognised in later recordings)",
    ),
    "hist.enrolled": ("已保存声纹：{name}", "Voice saved: {name}"),
    "hist.renamed": (
        "已改名：{old} → {new}（导出与搜索都用新名字）",
        "Renamed {old} → {new} (exports and search use it)",
    ),
    "hist.downloads": ("下载（含会议纪要 .md / .docx）", "Downloads (minutes as .md / .docx)"),
    "hist.query.placeholder": ("文本或文件名中的任意字词", "any part of the text or file name"),
    "hist.language": ("语言", "Language"),
    "hist.all": ("全部", "All"),
    "hist.since": ("起始日期", "From"),
    "hist.until": ("截止日期（含）", "To (inclusive)"),
    "hist.search": ("搜索", "Search"),
    "hist.prev": ("上一页", "Previous"),
    "hist.next": ("下一页", "Next"),
    "hist.page": (
        "第 {page} / {pages} 页，共 {total} 条",
        "Page {page} of {pages}, {total} entries",
    ),
    "hist.export": ("导出 CSV", "Export CSV"),
    "hist.entries": ("记录（点击一行查看）", "Entries (click a row to open it)"),
    "hist.none": ("未选中记录。", "No entry selected."),
    "hist.audio": ("音频", "Audio"),
    "hist.no_audio": ("（音频未保留）", "(audio not kept)"),
    "hist.delete": ("删除", "Delete"),
    "hist.confirm": (
        "确定删除「{name}」？此操作无法撤销。",
        "Delete “{name}”? This cannot be undone.",
    ),
    "hist.confirm_yes": ("确认删除", "Yes, delete"),
    "hist.confirm_no": ("取消", "Keep it"),
    "hist.deleted": ("已删除「{name}」。", "Deleted “{name}”."),
    "hist.transcript_hint": (
        "点击一段从那里播放；✎ 修改这段的文字或说话人（原识别结果会保留）。",
        "Click a segment to play from there; ✎ corrects its text or speaker (the recognition "
        "is kept).",
    ),
    "voice.title": ("声纹库（认出说话人）", "Voice profiles (speakers recognised by name)"),
    "voice.hint": (
        "登记一个人的声音（5–10 秒只有他/她说话的录音）：以后区分说话人时，"
        "声音相似的人直接标上名字；没登记的仍是 S1、S2…",
        "Enrol a person's voice from 5–10 s of them speaking alone: when speakers are told "
        "apart later, a voice that matches is labelled with the name; others stay S1, S2…",
    ),
    "voice.col.name": ("名字", "Name"),
    "voice.col.source": ("来自", "From"),
    "voice.col.time": ("登记时间", "Enrolled"),
    "voice.clip": ("此人单独说话的录音（5–10 秒）", "A clip of the person alone (5–10 s)"),
    "voice.name": ("名字（如：王经理）", "Name (e.g. Ms Wang)"),
    "voice.enrol": ("登记声纹", "Enrol the voice"),
    "voice.pick": ("已登记的声纹", "Enrolled voice"),
    "voice.delete": ("删除此声纹", "Delete the voice"),
    "voice.confirm": (
        "确定删除「{name}」的声纹？以后的录音不再自动认出此人。",
        "Delete the voice of “{name}”? Later recordings will not name them any more.",
    ),
    "voice.deleted": ("已删除声纹：{name}", "Voice deleted: {name}"),
    "voice.need_clip": ("请先上传或录一段此人的声音。", "Upload or record a clip first."),
    "voice.need_name": ("请填写名字。", "Give the voice a name."),
    "edit.save": ("保存", "Save"),
    "edit.cancel": ("取消", "Cancel"),
    "edit.saving": ("保存中…", "Saving…"),
    "edit.speaker": ("说话人", "Speaker"),
    "edit.text": ("这段的文字", "Text of the segment"),
    "edit.edit": ("修改这段", "Correct this segment"),
    "edit.play": ("点击从这里播放", "Click to play from here"),
    "edit.edited": ("已修改", "corrected"),
    "edit.original": ("原识别：", "recognised: "),
    "edit.revert": ("恢复原识别", "Put back"),
    "edit.sample": ("试听 {name} 的声音", "Hear {name}'s voice"),
    "edit.participants": ("参与者：", "Speakers: "),
    "edit.empty": ("文字不能为空。", "The text cannot be empty."),
    "edit.too_long": ("文字最多 {limit} 个字。", "The text can hold at most {limit} characters."),
    "edit.bad_speaker": (
        "说话人的名字须为 1–64 个可见字符。",
        "A speaker's name must be 1–64 printable characters.",
    ),
    "edit.nothing": ("这条记录没有识别出文字。", "Nothing was recognised in this entry."),
    "col.id": ("编号", "ID"),
    "col.time": ("时间", "Time"),
    # hotwords
    "hw.hint": (
        "热词表是一组专有名词（人名、产品、术语）。识别时在“识别选项”里选中一张表，"
        "读音相近的误识会被改成表里的写法，没说到的词不会被加进去。",
        "A list holds proper names and terms (people, products, jargon). Pick it in a "
        "recognition's options: words recognised with a similar sound are written the list's "
        "way; nothing that was not said is added.",
    ),
    "hw.confirm": (
        "确定删除热词表「{name}」？此操作无法撤销。",
        "Delete the list “{name}”? This cannot be undone.",
    ),
    "hw.lists": ("已保存的热词表", "Saved lists"),
    "hw.new": ("（新建）", "(new list)"),
    "hw.name": ("名称", "Name"),
    "hw.terms": ("热词（每行一个）", "Terms (one per line)"),
    "hw.save": ("保存", "Save"),
    "hw.delete": ("删除此表", "Delete list"),
    "hw.saved": ("已保存「{name}」，共 {count} 个热词。", "Saved “{name}”: {count} terms."),
    "hw.deleted": ("已删除「{name}」。", "Deleted “{name}”."),
    "hw.need_name": ("请填写名称。", "Give the list a name."),
    "hw.need_terms": ("请至少填写一个热词。", "Enter at least one term."),
    "hw.missing": ("没有名为「{name}」的热词表。", "No list named “{name}”."),
    # system
    "sys.refresh": ("刷新", "Refresh"),
    "sys.model_title": ("模型与设备", "Model and device"),
    "sys.model": ("默认模型", "Default model"),
    "sys.device": ("设备", "Device"),
    "sys.apply": ("加载并设为默认", "Load and use"),
    "sys.release": ("释放显存 / 内存", "Release GPU memory"),
    "sys.loaded": (
        "已加载「{model}」（{device}，{compute}）。",
        "Loaded “{model}” ({device}, {compute}).",
    ),
    "sys.cpu": ("CPU", "CPU"),
    "sys.cores": ("{cores} 核", "{cores} cores"),
    "sys.ram": ("内存", "RAM"),
    "sys.ram.value": ("可用 {free} / 共 {total} MB", "{free} MB free of {total} MB"),
    "sys.rss": ("本进程内存", "This process"),
    "sys.gpu": ("GPU", "GPU"),
    "sys.no_gpu": ("无（使用 CPU）", "none (CPU only)"),
    "sys.gpu.value": (
        "{name}：已用 {used} / 共 {total}",
        "{name}: {used} of {total} used",
    ),
    "sys.active": ("已加载模型", "Loaded model"),
    "sys.none_loaded": (
        "尚未加载（首次识别时加载 {model}）",
        "none yet ({model} loads on first use)",
    ),
    "sys.path": ("模型路径", "Model path"),
    "sys.device_reason": ("设备选择原因", "Why this device"),
    "sys.why.cuda": ("自动：发现 {value} 个 CUDA GPU", "auto: {value} CUDA GPU(s) found"),
    "sys.why.mps": ("自动：可用 Apple MPS", "auto: Apple MPS available"),
    "sys.why.cpu": (
        "自动：没有可用的 CUDA GPU，使用 CPU",
        "auto: no CUDA GPU found, using the CPU",
    ),
    "sys.why.asked": ("按设置使用 {value}", "{value}, as set"),
    "sys.queue": ("排队中的识别", "Recognitions waiting"),
    "sys.cluster": ("Ray 集群", "Ray cluster"),
    "sys.cluster.value": (
        "{address} · {alive}/{total} 个节点在线 · {cpus} CPU · {gpus} GPU · "
        "{models} 个模型 · {running} 个文件识别中",
        "{address} · {alive} of {total} nodes up · {cpus} CPUs · {gpus} GPUs · "
        "{models} models · {running} files running",
    ),
    "sys.cluster.down": ("无法连接 {address}：{error}", "{address} cannot be reached: {error}"),
    "sys.node.value": (
        "{state} · {address} · {cpus} CPU · {gpus} GPU",
        "{state} · {address} · {cpus} CPUs · {gpus} GPUs",
    ),
    "sys.node.up": ("在线", "up"),
    "sys.node.down": ("已离线", "down"),
    "sys.node.head": ("主节点，在线", "head, up"),
    "sys.database": ("历史数据库", "History database"),
    "sys.db.ok": ("正常（预写日志完好）", "OK (write-ahead log intact)"),
    "sys.db.repaired": (
        "预写日志曾被其他程序删除 {n} 次，已重新打开；每条记录写入时都已存入数据库文件，未丢失。",
        "Another program deleted the write-ahead log {n} time(s); it was reopened, and every "
        "record had already been written to the database file, so nothing was lost.",
    ),
    "sys.versions": ("软件版本", "Versions"),
    "sys.released": ("释放结果", "Released"),
    "sys.before": ("释放前", "Before"),
    "sys.after": ("释放后", "After"),
    "sys.rel.rss": ("进程内存", "Process memory"),
    "sys.rel.gpu": ("GPU 已用", "GPU used"),
    "sys.rel.models": ("卸载的模型", "Models unloaded"),
    "sys.rel.none": ("（无）", "(none)"),
    # errors
    "err.unexpected": (
        "出现意外错误（{kind}），详情见服务器日志。",
        "Unexpected error ({kind}); the server log has the details.",
    ),
    "err.file": ("{name}：{error}", "{name}: {error}"),
    "err.not_uploaded": (
        "只能使用在本页上传的文件，请重新上传。",
        "Only a file uploaded on this page can be used; please upload it again.",
    ),
}

LANGUAGES: tuple[tuple[str, str, str], ...] = (
    ("zh", "中文", "Chinese"),
    ("en", "英语", "English"),
    ("yue", "粤语", "Cantonese"),
    ("ja", "日语", "Japanese"),
    ("ko", "韩语", "Korean"),
    ("fr", "法语", "French"),
    ("de", "德语", "German"),
    ("es", "西班牙语", "Spanish"),
    ("ru", "俄语", "Russian"),
    ("it", "意大利语", "Italian"),
    ("pt", "葡萄牙语", "Portuguese"),
    ("ar", "阿拉伯语", "Arabic"),
    ("vi", "越南语", "Vietnamese"),
    ("th", "泰语", "Thai"),
)
"""Languages offered in the pickers (code, Chinese name, English name); others can be typed."""


def lang_of(value: str | None) -> str:
    """A page language from a query parameter or the switch; Chinese unless English is asked."""
    return "en" if (value or "").lower().startswith("en") else DEFAULT_LANG


def both(key: str) -> str:
    """``data-zh`` and ``data-en`` attributes with the text ``key``: for a text drawn once
    that the page's language script (``lang.js``) rewrites when the language changes."""
    zh, en = TEXTS[key]
    return f'data-zh="{html.escape(zh)}" data-en="{html.escape(en)}"'


def t(key: str, lang: str = DEFAULT_LANG, **values: Any) -> str:
    """The text ``key`` in ``lang`` with ``values`` filled in."""
    zh, en = TEXTS[key]
    text = en if lang == "en" else zh
    return text.format(**values) if values else text


def language_name(code: str, lang: str) -> str:
    for known, zh, en in LANGUAGES:
        if known == code:
            return f"{en if lang == 'en' else zh} ({code})"
    return code


def language_choices(lang: str, *, auto_key: str = "opt.auto") -> list[tuple[str, str]]:
    """(label, code) pairs for a language picker; the first one is "detect" / "all" (``""``)."""
    return [(t(auto_key, lang), "")] + [(language_name(c, lang), c) for c, _, _ in LANGUAGES]


class T:
    """A text key (or several, for a table's headers) standing for a keyword's value."""

    def __init__(self, *keys: str) -> None:
        self.keys = keys

    def resolve(self, lang: str) -> str | list[str]:
        texts = [t(k, lang) for k in self.keys]
        return texts[0] if len(texts) == 1 else texts


class Lazy:
    """A keyword value computed per language (choices with translated labels)."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        self.make = make


C = TypeVar("C", bound=gr.components.Component | gr.blocks.BlockContext)


class Translator:
    """Builds components with Chinese texts and relabels them all when the language changes."""

    def __init__(self) -> None:
        self.components: list[Any] = []
        self._fields: list[dict[str, T | Lazy]] = []

    def __call__(self, factory: Callable[..., C], *args: Any, **kwargs: Any) -> C:
        """``factory(*args, **kwargs)`` with :class:`T` and :class:`Lazy` values resolved."""
        fields = {k: v for k, v in kwargs.items() if isinstance(v, T | Lazy)}
        built = {k: _resolve(v, DEFAULT_LANG) for k, v in fields.items()}
        component = factory(*args, **{**kwargs, **built})
        self.components.append(component)
        self._fields.append(fields)
        return component

    @property
    def tables(self) -> list[gr.Dataframe]:
        """The registered tables, whose rows the relabel event needs as inputs."""
        return [c for c in self.components if isinstance(c, gr.Dataframe)]

    def updates(self, lang: str, table_values: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """One ``gr.update`` per registered component, in :attr:`components` order.

        ``table_values`` are the current values of :attr:`tables`: Gradio redraws a table's
        headers only together with its rows, so they are sent back under the new headers.
        """
        values = iter(table_values)
        updates = []
        for component, fields in zip(self.components, self._fields, strict=True):
            update = {k: _resolve(v, lang) for k, v in fields.items()}
            if isinstance(component, gr.Dataframe):
                rows = _rows(next(values, None))
                if "headers" in update:
                    update["value"] = {"headers": update["headers"], "data": rows}
            updates.append(gr.update(**update))
        return updates


def _rows(value: Any) -> list[list[Any]]:
    """A table's rows from the value Gradio passes in (a pandas DataFrame, or rows already)."""
    if value is None:
        return []
    if hasattr(value, "values") and hasattr(value, "columns"):
        return [list(row) for row in value.values.tolist()]
    if isinstance(value, dict):
        return list(value.get("data") or [])
    return [list(row) for row in value]


def _resolve(value: T | Lazy, lang: str) -> Any:
    return value.resolve(lang) if isinstance(value, T) else value.make(lang)
