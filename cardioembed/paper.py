"""What the CardioEmbed paper reports, with sources, so the book quotes it through glue.

Young & Matthews, "CardioEmbed: Domain-Specialized Text Embeddings for Clinical
Cardiology", arXiv:2511.10930 (LaTeX source `CardioEmbed-Qwen3-8B/main.tex` of the
GitHub repository ricyoung/CardioEmbed).
"""

RECIPE = {
    "base_model": "Qwen/Qwen3-Embedding-8B",
    "lora_rank": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "pooling": "eos",
    "temperature": 0.05,
    "epochs": 2,
    "batch_size": 128,
    "learning_rate": 2e-4,
    "warmup_ratio": 0.1,
    "gpu": "one H100 PCIe 80 GB",
    "training_minutes": 658.6,
}

CORPUS = {
    "textbooks": 7,
    "sentences": 150_237,
    "tokens": 4_300_000,
    "tokens_per_sentence": 28.4,
    "min_sentence_chars": 20,
    "train_triplets": 106_386,
    "validation_triplets": 12_516,
    "test_triplets": 6_259,
    "split_seed": 42,
}

# Held-out 6,259 pairs: Acc@1, Acc@5 (fractions) and MRR.
RESULTS = {
    "CardioEmbed": (0.9960, 0.9998, 0.9976),
    "Qwen3-Embedding-8B, untrained": (0.9383, 0.9634, 0.9506),
    "GTE-Base": (0.9228, 0.9599, 0.9401),
    "MedEmbed-base": (0.9158, 0.9465, 0.9313),
    "MedTE": (0.8366, 0.8899, 0.8611),
}

# MTEB as the paper reports it for CardioEmbed, and the official MTEB results of the
# untrained Qwen3-Embedding-8B (embeddings-benchmark results, revision 4e423935).
MTEB_PAPER = {"BIOSSES": 0.7748, "SciFact": 0.6098, "NFCorpus": 0.2026}
MTEB_UNTRAINED_OFFICIAL = {"BIOSSES": 0.8159, "SciFact": 0.7846}
