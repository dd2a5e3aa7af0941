"""What a run cost: ``price(usage, model=..., provider=...)`` from the genai-prices price list.

::

    cost = rxllm.price(final_response.usage, model=provider.model, provider=provider)
    if cost is not None:
        print(f"{cost.amount} {cost.currency} at the prices of {cost.price_date}")

Needs the ``prices`` extra (``pip install 'rxllm[prices]'``: the
`genai-prices <https://pypi.org/project/genai-prices/>`_ package, Pydantic's
price list of the providers' published prices with their history). The cost
is never invented: ``None`` when the usage is unknown, when the model is not
in the list, or when the server is not one whose prices the list knows (a
local server, a proxy). Passing the rxllm provider prices by the server it
talks to (its ``base_url``): an OpenAI-compatible local server serving a model
named like an OpenAI model has no price.

What rxllm's ``Usage`` says is priced: input tokens (the cached part at the
cache-read price) and output tokens (reasoning included). Anthropic's cache
writes are counted among the input tokens, at the plain input price.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from rxllm.events import Usage

__all__ = ["Cost", "price"]


class _Served(Protocol):
    @property
    def base_url(self) -> str: ...


class Cost(msgspec.Struct, frozen=True, kw_only=True):
    """A cost in ``currency`` at the prices in force on ``price_date``, from ``source``."""

    amount: Decimal
    currency: str
    price_date: date
    input_amount: Decimal
    output_amount: Decimal
    source: str

    def __str__(self) -> str:
        return f"{_short(self.amount)} {self.currency} (prices of {self.price_date.isoformat()})"


def price(
    usage: Usage | None,
    *,
    model: str,
    provider: str | _Served,
    at: datetime | None = None,
) -> Cost | None:
    """The cost of ``usage`` on ``model``, or ``None`` when it is not known.

    ``provider`` is a genai-prices provider id (``"openai"``, ``"anthropic"``,
    ``"google"``...) or an rxllm provider (priced by its ``base_url``). ``at``
    is when the requests were made (now when ``None``): the prices in force
    that day apply. Raises ``ModuleNotFoundError`` without the ``prices`` extra.
    """
    try:
        import genai_prices
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "rxllm.price needs the price list: pip install 'rxllm[prices]'", name=exc.name
        ) from exc
    if usage is None:
        return None
    when = at if at is not None else datetime.now(UTC)
    counts: dict[str, int] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if usage.cached_input_tokens:
        counts["cache_read_tokens"] = usage.cached_input_tokens
    where: dict[str, Any] = (
        {"provider_id": provider} if isinstance(provider, str) else {"provider_api_url": provider.base_url}
    )
    try:
        calculation = genai_prices.calc_price(
            genai_prices.Usage(**counts), model, genai_request_timestamp=when, **where
        )
    except LookupError:  # a model or a server the price list does not know
        return None
    return Cost(
        amount=calculation.total_price,
        currency="USD",  # genai-prices states every price in US dollars
        price_date=when.date(),
        input_amount=calculation.input_price,
        output_amount=calculation.output_price,
        source=f"genai-prices {genai_prices.__version__}",
    )


def known_cost(usage: Usage | None, *, model: str, provider: str | _Served) -> Cost | None:
    """``price(...)`` for views that show a cost where one is known: ``None`` without the extra too."""
    try:
        return price(usage, model=model, provider=provider)
    except ModuleNotFoundError:
        return None


def _short(amount: Decimal) -> str:
    """``0.00725``, ``1.5``: at most six decimals, no trailing zeros."""
    text = f"{amount:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
