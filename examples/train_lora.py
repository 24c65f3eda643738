"""Fine-tune a small chat model on instruction data: memlens shows what one training step
needs on the Trainer line, and quick fixes that make it fit the machine."""

import torch
from datasets import load_dataset
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
)

MODEL = "Qwen/Qwen2.5-0.5B"
max_length = 1024

tokenizer = AutoTokenizer.from_pretrained(MODEL)
model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32)


def tokenize(example: dict[str, str]) -> dict[str, list[int]]:
    text = f"### Instruction:\n{example['instruction']}\n### Response:\n{example['output']}"
    return tokenizer(text, truncation=True, max_length=max_length)


dataset = load_dataset("yahma/alpaca-cleaned", split="train").map(tokenize)
args = TrainingArguments(
    output_dir="qwen-alpaca",
    per_device_train_batch_size=8,
    learning_rate=2e-5,
    num_train_epochs=1,
    logging_steps=10,
)
trainer = Trainer(
    model=model,
    args=args,
    train_dataset=dataset,
    data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
)


def train_by_hand(epochs: int = 1) -> None:
    """The same fine-tune as a hand-written loop."""
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    loader = DataLoader(dataset, batch_size=8, shuffle=True, collate_fn=collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    model.train()
    for _ in range(epochs):
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()


if __name__ == "__main__":
    trainer.train()
