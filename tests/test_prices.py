"""rxllm.price: costs from the genai-prices list, never invented."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec

import rxllm
from rxllm import Cost, Usage, price
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat

NOV_1 = datetime(2026, 11, 1, 12, tzinfo=UTC)
USAGE = Usage(input_tokens=1000, output_tokens=500, total_tokens=1500, cached_input_tokens=200)


def test_a_known_model_costs_its_listed_prices_with_cached_input_at_the_cache_price() -> None:
    # gpt-4o: $2.50 per million input tokens, $1.25 cached, $10 output.
    cost = price(USAGE, model="gpt-4o", provider="openai", at=NOV_1)
    assert cost is not None
    assert cost == Cost(
        amount=Decimal("0.00725"),
        currency="USD",
        price_date=date(2026, 11, 1),
        input_amount=Decimal("0.00225"),  # 800 x 2.50 + 200 x 1.25, per million
        output_amount=Decimal("0.005"),
        source=cost.source,
    )
    assert cost.source.startswith("genai-prices 0.")
    assert str(cost) == "0.00725 USD (prices of 2026-11-01)"
    assert msgspec.json.decode(msgspec.json.encode(cost), type=Cost) == cost


def test_a_provider_is_priced_by_the_server_it_talks_to() -> None:
    openai = OpenAIChat("gpt-4o", api_key="sk-test")  # https://api.openai.com/v1
    assert price(USAGE, model="gpt-4o", provider=openai, at=NOV_1) == price(
        USAGE, model="gpt-4o", provider="openai", at=NOV_1
    )
    claude = AnthropicMessages("claude-sonnet-4-5", api_key="sk-test")
    cost = price(Usage(input_tokens=1000, output_tokens=1000), model=claude.model, provider=claude, at=NOV_1)
    assert cost is not None and cost.amount == Decimal("0.018")  # $3 in, $15 out per million
    # A local server that serves a model named like OpenAI's is not OpenAI: no price.
    local = OpenAIChat("gpt-4o", base_url="http://127.0.0.1:11434/v1")
    assert price(USAGE, model="gpt-4o", provider=local) is None


def test_unknown_usage_or_model_has_no_cost() -> None:
    assert price(None, model="gpt-4o", provider="openai") is None
    assert price(USAGE, model="no-such-model-anywhere", provider="openai") is None
    assert price(USAGE, model="gpt-4o", provider="no-such-provider") is None


def test_without_the_extra_price_says_what_to_install_and_views_show_no_cost() -> None:
    code = """
import io, sys
sys.modules["genai_prices"] = None  # as if the prices extra were not installed
import rxllm
from rxllm.cli import Console
from rxllm.prices import known_cost
usage = rxllm.Usage(input_tokens=1, output_tokens=1, total_tokens=2)
try:
    rxllm.price(usage, model="gpt-4o", provider="openai")
except ModuleNotFoundError as exc:
    print(exc)
print(known_cost(usage, model="gpt-4o", provider="openai"))
out = io.StringIO()
console = Console(out, cost_of=lambda u: known_cost(u, model="gpt-4o", provider="openai"))
console.show(rxllm.FinalResponse(text="", usage=usage, turns=1))
print(out.getvalue().strip())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "rxllm.price needs the price list: pip install 'rxllm[prices]'",
        "None",
        "[usage] 1 turn · input 1 · output 1 · total 2 tokens (reasoning 0, cached 0)",
    ]


def test_price_is_public() -> None:
    assert rxllm.price is price and rxllm.Cost is Cost
