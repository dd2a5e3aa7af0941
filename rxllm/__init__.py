"""rxllm: LLM provider streams as ReactiveX Observables."""

from loguru import logger

logger.disable("rxllm")
