"""Report files written by algorithms: JSON without NaN, put in place only when complete."""
import json
import math
import os

from .errors import MineSARError


def json_safe(value):
    """NaN and infinities (undefined ratios) are not JSON: write null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return json_safe(value.item())
    return value


def write_text_atomically(path: str, text: str) -> str:
    """``text`` at ``path`` via a temporary name beside it, removed if writing fails."""
    temporary = path + ".part"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise MineSARError(f"{path}: cannot write the report ({error.strerror or error}).")
    return path


def write_json_report(path: str, report) -> str:
    return write_text_atomically(path, json.dumps(json_safe(report), indent=1))
