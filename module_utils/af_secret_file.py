"""Writing a secret (a token) to a file without it ever being readable by others: the one writer of the
project's modules that keep or re-make a secret file (scitoken)."""

from __future__ import annotations

import os
import tempfile


def write_secret_file(module, dest: str, text: str, prefix: str) -> None:
    """Write text (plus a newline) to dest atomically: a temporary file created under umask 077 in the
    same directory (the parent made 0700 if missing), then module.atomic_move. Fails the module on error;
    the message names the file, never the content."""
    parent = os.path.dirname(dest) or "."
    old_umask = os.umask(0o077)
    try:
        os.makedirs(parent, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=prefix)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
            # keep_dest_attrs=False: the new file keeps the temporary file's 0600 until the attributes are set.
            module.atomic_move(tmp, dest, unsafe_writes=False, keep_dest_attrs=False)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        module.fail_json(msg=f"cannot write {dest}: {exc.strerror or type(exc).__name__}", changed=False)
    except Exception as exc:  # atomic_move raises plain Exception; its text names files, never the content
        module.fail_json(msg=f"cannot write {dest}: {exc}", changed=False)
    finally:
        os.umask(old_umask)
