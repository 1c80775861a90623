"""The console command's entry point (``crnn-ocr``, ``python -m crnn_ocr``). ``cli`` imports
torch, which takes a few seconds; a Ctrl-C meanwhile ends with the one line a Ctrl-C during a
command gives, not a traceback, even when it leaves a half-imported library that then fails
in another way."""
from __future__ import annotations

import os
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    interrupted = []

    def on_interrupt(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    ours = threading.current_thread() is threading.main_thread()  # only there can a handler be set
    previous = signal.signal(signal.SIGINT, on_interrupt) if ours else None
    try:
        from crnn_ocr.cli.main import main as run
    except BaseException as e:  # noqa: BLE001 - each kind becomes its one line below
        if interrupted or isinstance(e, KeyboardInterrupt):
            print("crnn-ocr: interrupted", file=sys.stderr)
            return 130
        if os.environ.get("CRNN_OCR_TRACEBACK"):
            raise
        from crnn_ocr.utils.files import shown  # standard library only: it loads when torch does not

        print(f"crnn-ocr: error: cannot load crnn_ocr: {type(e).__name__}: {shown(str(e)[:200])}", file=sys.stderr)
        return 2
    finally:
        if ours:
            signal.signal(signal.SIGINT, previous)
    return run(argv)
