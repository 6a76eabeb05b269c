"""cardioembed: the code that the study's notebooks share."""

import logging

# peft imports bitsandbytes, which warns on CPUs with AVX512-BF16 that an optional 4-bit
# kernel package is missing; the study quantizes to 8 bits only.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
