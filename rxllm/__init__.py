"""rxllm: LLM provider streams as ReactiveX Observables."""

from loguru import logger

__version__ = "0.1.0"

logger.disable("rxllm")
