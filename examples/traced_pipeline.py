"""A retrieval pipeline with a span per step, for `memlens run` and the editor's trace lenses.

    memlens run -- python examples/traced_pipeline.py

`memlens run` configures OpenTelemetry; the code only names its steps. With
`memlens.tracing.enabled` on, a lens above `retrieve` and `generate` says how many traces
passed through each and their median duration; `open` shows the latest trace.
"""

import time

from opentelemetry import trace

tracer = trace.get_tracer("pipeline")


def retrieve(question: str) -> list[str]:
    with tracer.start_as_current_span("retrieve"):
        time.sleep(0.02)
        return [f"passage about {question}"]


def generate(question: str, passages: list[str]) -> str:
    with tracer.start_as_current_span("generate"):
        time.sleep(0.05)
        return f"{question}: {len(passages)} passage(s)"


if __name__ == "__main__":
    for question in ("KV cache", "INT4", "attention sinks"):
        with tracer.start_as_current_span("ask"):
            print(generate(question, retrieve(question)))
