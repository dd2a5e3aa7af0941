import types

import rxllm


def test_all_is_sorted_and_complete() -> None:
    public = {
        name
        for name, value in vars(rxllm).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "logger"
    }
    assert rxllm.__all__ == sorted(rxllm.__all__)
    assert set(rxllm.__all__) == public
