import rxllm


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in vars(rxllm) if not name.startswith("_")} - {"logger"}
    modules = {
        "control",
        "errors",
        "events",
        "messages",
        "request",
        "response",
        "tools",
        "typing",
        "sse",
        "operators",
        "providers",
    }
    assert rxllm.__all__ == sorted(rxllm.__all__)
    assert set(rxllm.__all__) == public - modules
