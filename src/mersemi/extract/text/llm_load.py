"""Load a language-model directory for the text stage: tokenizer, base model, memory plan.

Real directories (Baichuan2, LLaMA / Chinese-Alpaca-2, the BERT family) are loaded as users
download them, files unedited:

- Tokenizer (`tokenizer`, `TOKENIZERS`). A LLaMA `tokenizer.model` gets transformers 4.28's
  slow tokenizer (`sp_llama`: MERTools' `use_fast=False`, only `sentencepiece` needed); other
  directories without code of their own get `AutoTokenizer`. Baichuan2's slow tokenizer calls
  `PreTrainedTokenizer.__init__` before it loads its SentencePiece model, which transformers 5
  no longer tolerates (`'property' object cannot be interpreted as an integer`;
  baichuan-inc/Baichuan2 #204, #226, #269). For remote-code tokenizers backed by
  `tokenizer.model`, a subclass of the directory's own class loads the SentencePiece model
  first and then runs the upstream `__init__` unchanged, so token ids are the upstream ones
  (= SentencePiece's, tested).
- Model. Only the base model is loaded (no LM head: 1.3 GB less for Baichuan2-13B, never
  evaluated), in the dtype asked for (CPU: float32, also for fp16 checkpoints such as
  Chinese-Alpaca-2, as transformers 4.28 loaded them; 5.x keeps fp16 unless told).
  Baichuan2's `auto_map` names `AutoModelForCausalLM` only; its base class (`BaichuanModel`)
  is taken from the same module, else the causal LM's `base_model`.
- Memory plan (`memory`): see `MEMORY`, `docs/extraction_models.md`.

Every failure a user can fix is one `InputError` line naming the directory, cause and fix.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from ...errors import InputError

log = logging.getLogger(__name__)

# memory plan -> what it does (GPU memory for Baichuan2-13B in docs/extraction_models.md)
MEMORY = {
    "single": "whole model in bf16/fp16 on one device (CPU: float32)",
    "multi_gpu": "layers spread over every GPU the job sees (accelerate device_map auto)",
    "int8": "8-bit weights (bitsandbytes LLM.int8), one GPU",
    "int4": "4-bit NF4 weights (bitsandbytes), one GPU",
    "cpu_offload": "as many layers as fit on the GPU, the rest in CPU memory (slow)",
}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def _fail(path, cause: str, fix: str) -> InputError:
    return InputError(f"extract text: {path}: {cause} -> {fix}")


def require_packages(path, names: list[str], why: str) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pip = {"sentencepiece": "sentencepiece", "accelerate": "accelerate"}.get(name, name)
            extra = " (pip install -e '.[quant]')" if name == "bitsandbytes" else ""
            raise _fail(path, f"{why} needs the package {name}, not installed",
                        f"pip install {pip}{extra}") from None  # fmt: skip


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError) as e:
        raise _fail(path, f"unreadable JSON ({e})", "re-download the file") from None


def weight_files(path: Path) -> list[Path]:
    """The weight files the directory needs (every shard its index names); InputError if none
    or if the index names a shard that is missing."""
    for name in INDEX_FILES:
        index = path / name
        if index.is_file():
            shards = sorted(set(read_json(index).get("weight_map", {}).values()))
            missing = [s for s in shards if not (path / s).is_file()]
            if not shards or missing:
                raise _fail(
                    path,
                    f"{name} names missing weight file(s) {missing[:3]}",
                    "finish the download (git lfs pull / huggingface-cli download)",
                )
            return [path / s for s in shards]
    found = [path / n for n in WEIGHT_FILES if (path / n).is_file()]
    if not found:
        raise _fail(path, "no weights (model*.safetensors, pytorch_model*.bin or their index)",
                    "download the model's weights into model_dir")  # fmt: skip
    return found


def remote_class(path: Path, ref: str, trust: bool):
    """The class `module.Class` of the directory's own code; import failures are one line."""
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    if not trust:
        raise _fail(path, f"the model ships its own code ({ref})",
                    "set extract.text.trust_remote_code: true")  # fmt: skip
    try:
        return get_class_from_dynamic_module(ref, str(path))
    except ImportError as e:
        raise _fail(
            path,
            f"its code ({ref}) cannot be imported: {e}",
            "install the package it names (pinned in pyproject.toml)",
        ) from None
    except (OSError, AttributeError, SyntaxError, ValueError) as e:
        raise _fail(path, f"its code ({ref}) failed to load: {type(e).__name__}: {e}",
                    "re-download the directory's .py files") from None  # fmt: skip


def _auto_ref(entry) -> str | None:
    """An auto_map value: 'module.Class', or [slow, fast] for tokenizers."""
    if isinstance(entry, list | tuple):
        entry = next((e for e in entry if e), None)
    return entry


TOKENIZERS = {
    "auto": "the directory's own code (auto_map), else LLaMA's slow SentencePiece tokenizer for "
    "a LLaMA tokenizer.model, else AutoTokenizer",
    "sentencepiece": "transformers 4.28's slow LlamaTokenizer ([BOS] + SentencePiece ids)",
    "transformers": "AutoTokenizer as the installed transformers builds it",
}


def tokenizer_kind(path: Path, choice: str = "auto", model_type: str | None = None) -> str:
    """`remote`, `sentencepiece` or `transformers`: which tokenizer `choice` loads from `path`."""
    from .sp_llama import is_llama_sentencepiece

    if choice != "auto":
        return choice
    config = read_json(path / "tokenizer_config.json")
    if _auto_ref(config.get("auto_map", {}).get("AutoTokenizer")):
        return "remote"
    if model_type is None:
        model_type = read_json(path / "config.json").get("model_type")
    return "sentencepiece" if is_llama_sentencepiece(path, model_type) else "transformers"


def load_tokenizer(path: Path, trust: bool, kind: str = "auto"):
    """The tokenizer of `path`: `kind` a `TOKENIZERS` key, or `remote` (the auto choice for a
    directory whose tokenizer is its own code)."""
    from transformers import AutoTokenizer

    kind = tokenizer_kind(path, kind)
    config = read_json(path / "tokenizer_config.json")
    ref = _auto_ref(config.get("auto_map", {}).get("AutoTokenizer"))
    if (
        kind == "remote"
        and (path / "tokenizer.model").is_file()
        and not (path / "tokenizer.json").is_file()
    ):
        require_packages(path, ["sentencepiece"], "its tokenizer (tokenizer.model)")
        upstream = remote_class(path, ref, trust)
        cls = sentencepiece_first(upstream)
        loader = cls.from_pretrained
    elif kind == "sentencepiece":
        require_packages(path, ["sentencepiece"], "its tokenizer (tokenizer.model)")
        if not (path / "tokenizer.model").is_file():
            raise _fail(path, "tokenizer: sentencepiece, but there is no tokenizer.model",
                        "set extract.text.tokenizer: auto")  # fmt: skip
        from .sp_llama import load_llama_sentencepiece

        loader = load_llama_sentencepiece
    else:
        spm_only = (path / "tokenizer.model").is_file() and not (path / "tokenizer.json").is_file()
        if kind == "transformers" and spm_only and not _importable("google.protobuf"):
            raise _fail(path, "AutoTokenizer converts tokenizer.model to a fast tokenizer with "
                        "the package protobuf, not installed", "pip install protobuf, or "
                        "set extract.text.tokenizer: auto (LLaMA: 4.28's slow tokenizer, "
                        "MERTools' ids)")  # fmt: skip

        def loader(p):
            return AutoTokenizer.from_pretrained(p, trust_remote_code=trust)

    try:
        return loader(path)
    except ImportError as e:
        raise _fail(path, f"its tokenizer needs a package: {e}",
                    "install it, or set extract.text.tokenizer: sentencepiece for a "
                    "LLaMA tokenizer.model") from None  # fmt: skip
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise _fail(
            path,
            f"cannot load the tokenizer: {type(e).__name__}: {e}",
            "check tokenizer.model / tokenizer.json and tokenizer_config.json",
        ) from None


def sentencepiece_first(upstream: type) -> type:
    """A subclass of a slow SentencePiece tokenizer class that loads `sp_model` before the
    upstream `__init__` (which then runs unchanged and loads it again)."""
    import sentencepiece as spm

    def __init__(self, vocab_file, *args, sp_model_kwargs=None, **kwargs):
        self.sp_model_kwargs = sp_model_kwargs or {}
        self.sp_model = spm.SentencePieceProcessor(**self.sp_model_kwargs)
        self.sp_model.Load(str(vocab_file))
        upstream.__init__(self, vocab_file, *args, sp_model_kwargs=sp_model_kwargs, **kwargs)

    return type(upstream.__name__, (upstream,), {"__init__": __init__})


def base_model_class(path: Path, config, trust: bool):
    """The class to load: the directory's AutoModel, else the base class beside its causal LM
    (`XForCausalLM` -> `XModel`), else None (load the causal LM and take `base_model`)."""
    auto_map = getattr(config, "auto_map", None) or {}
    if "AutoModel" in auto_map:
        return remote_class(path, _auto_ref(auto_map["AutoModel"]), trust), False
    if "AutoModelForCausalLM" in auto_map:
        causal = remote_class(path, _auto_ref(auto_map["AutoModelForCausalLM"]), trust)
        name = causal.__name__.replace("ForCausalLM", "Model")
        base = getattr(sys.modules[causal.__module__], name, None)
        return (base, False) if base is not None else (causal, True)
    return None, False


def memory_kwargs(plan: str, device, dtype, path: Path) -> dict:
    """from_pretrained keywords of a memory plan (device placement, quantisation)."""
    if plan == "single":
        return {}
    if device.type != "cuda":
        raise _fail(path, f"memory: {plan} needs a CUDA GPU, the job has none",
                    "use memory: single on CPU")  # fmt: skip
    require_packages(path, ["accelerate"], f"memory: {plan}")
    if plan == "multi_gpu":
        return {"device_map": "auto"}
    if plan == "cpu_offload":
        import torch

        free = int(torch.cuda.mem_get_info(device)[0] * 0.85)
        return {"device_map": "auto", "max_memory": {device.index or 0: free, "cpu": "512GiB"}}
    require_packages(path, ["bitsandbytes"], f"memory: {plan}")
    from transformers import BitsAndBytesConfig

    if plan == "int8":
        q = BitsAndBytesConfig(load_in_8bit=True)
    else:
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                               bnb_4bit_compute_dtype=dtype)  # fmt: skip
    return {"quantization_config": q, "device_map": {"": device.index or 0}}


def load_base_model(path: Path, trust: bool, dtype, device, plan: str = "single"):
    """(base model in eval mode, its config, the device its inputs go to)."""
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust)
    except ImportError as e:
        raise _fail(path, f"its config code cannot be imported: {e}",
                    "install the package it names") from None  # fmt: skip
    except (OSError, ValueError, KeyError) as e:
        hint = "" if trust else "; models that ship their own code need trust_remote_code: true"
        raise _fail(
            path,
            f"cannot read config.json ({e}){hint}",
            "check the directory / set extract.text.trust_remote_code",
        ) from None
    weight_files(path)
    from transformers.utils import logging as hf_logging

    # Quiet: the load report lists the unused lm_head (missing keys are checked below) and
    # remote code warns about transformers APIs it predates.
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        cls, is_causal = base_model_class(path, config, trust)
        kwargs = {"dtype": dtype, **memory_kwargs(plan, device, dtype, path)}
        if cls is None:
            model, info = AutoModel.from_pretrained(
                path, trust_remote_code=trust, output_loading_info=True, **kwargs
            )
        else:
            model, info = cls.from_pretrained(path, output_loading_info=True, **kwargs)
    except ImportError as e:
        raise _fail(path, f"loading needs a package: {e}", "install it") from None
    except (OSError, ValueError, RuntimeError) as e:
        raise _fail(path, f"cannot load the weights: {type(e).__name__}: {str(e)[:300]}",
                    "re-download the weights") from None  # fmt: skip
    finally:
        hf_logging.set_verbosity(level)
    missing = [k for k in info.get("missing_keys", []) if "lm_head" not in k]
    if missing:
        raise _fail(path, f"the weights lack {len(missing)} tensor(s) of the model, e.g. "
                    f"{missing[:3]}", "check that the weights belong to this config")  # fmt: skip
    if is_causal:
        model = model.base_model
    if "device_map" not in kwargs:
        model = model.to(device)
    first = next(model.parameters()).device
    log.info("text model %s: %s, memory plan %s (%s)", path, type(model).__name__, plan,
             MEMORY[plan])  # fmt: skip
    return model.eval(), config, first
