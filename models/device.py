"""Which torch device a step runs on: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda:N``."""
from ..core.errors import MineSARError


def resolve_device(name: str = "auto"):
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MineSARError(
                f"Device '{name}' requested but this PyTorch ({torch.__version__}) sees no CUDA GPU; "
                "use 'auto' or 'cpu'."
            )
        index = 0
        if ":" in name:
            try:
                index = int(name.split(":", 1)[1])
            except ValueError:
                raise MineSARError(f"Device '{name}': write cuda or cuda:N with N a GPU number.")
        if not 0 <= index < torch.cuda.device_count():
            raise MineSARError(f"Device '{name}': this machine has {torch.cuda.device_count()} CUDA GPU(s).")
        return torch.device(f"cuda:{index}")
    raise MineSARError(f"Unknown device '{name}': use auto, cpu, cuda or cuda:N.")


def describe_devices() -> str:
    """One line for users: torch version and the GPUs it can use."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return f"PyTorch {torch.__version__}, CUDA: {names}"
    return f"PyTorch {torch.__version__}, CPU only"


def cuda_device_names() -> list:
    """The names of the CUDA GPUs this PyTorch can use, in device order (``cuda:N`` is item N)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
