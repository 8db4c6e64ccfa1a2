"""Device selection for the torch steps: auto, cpu, cuda[:N]."""
import pytest

torch = pytest.importorskip("torch")

from minesar.core.errors import MineSARError  # noqa: E402
from minesar.models.device import describe_devices, resolve_device  # noqa: E402


def test_auto_picks_cuda_when_present_else_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("").type == expected
    assert resolve_device("CPU") == torch.device("cpu")


def test_unknown_or_unavailable_devices_are_explained():
    with pytest.raises(MineSARError, match="Unknown device 'gpu'"):
        resolve_device("gpu")
    if torch.cuda.is_available():
        with pytest.raises(MineSARError, match="write cuda or cuda:N"):
            resolve_device("cuda:x")
        with pytest.raises(MineSARError, match="CUDA GPU\\(s\\)"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
        assert resolve_device("cuda:0") == torch.device("cuda:0")
    else:
        with pytest.raises(MineSARError, match="sees no CUDA GPU"):
            resolve_device("cuda")


def test_description_names_torch_and_the_hardware():
    text = describe_devices()
    assert torch.__version__ in text
    assert ("CUDA" in text) == torch.cuda.is_available()
