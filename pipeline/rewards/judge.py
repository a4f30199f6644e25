"""A generative reward model: another LLM reads the completion and gives it a score.

R1's last RL stage mixes rule rewards with a model judge for open-ended prompts. The judge is
either a local transformers model (``model=<folder>``, loaded once per process) or any
OpenAI-compatible chat endpoint (``url=http://host:port/v1``; vLLM, TGI, llama.cpp and hosted
APIs speak it), called with the standard library's ``urllib``. The judge's reply is parsed for a
score ("Score: 7/10", "7 out of 10", or a bare number) and normalised to [0, 1]; a reply with no
score gives ``None``. Verdicts are cached by a hash of (judge, filled prompt): in memory always,
and on disk under ``<run_dir>/<cache_dir>`` when the stage gives its run folder, so a completion
repeated across steps (or a resumed run) is judged once.

What a config may ask for is what the admin allowed (``pipeline.access``): an endpoint under a
prefix of ``$R1STUDIO_JUDGE_URLS``, an API key from a variable listed in
``$R1STUDIO_JUDGE_KEY_ENVS``, a local model inside the allowed roots, a cache inside the run
folder. Validation says so first; the factory refuses the same things again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline.template import completion_text

from ._registry import RewardFunc, logger, register, row_columns

DEFAULT_JUDGE_TEMPLATE = (
    "You are grading an assistant's reply.\n\n"
    "Question:\n{prompt}\n\n"
    "Reference answer (may be empty):\n{reference}\n\n"
    "Assistant's reply:\n{completion}\n\n"
    "Rate how correct, helpful and clear the reply is, from 0 (worst) to 10 (best). "
    "End with a line of the form 'Score: N/10'."
)

_SCORE_PATTERNS = [
    re.compile(r"score\s*[:=]?\s*(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*(\d+(?:\.\d+)?)", re.I),
    re.compile(r"score\s*[:=]\s*(-?\d+(?:\.\d+)?)", re.I),
    re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*(\d+(?:\.\d+)?)", re.I),
]
_BARE_NUMBER = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*\.?\s*")


def parse_score(reply: str | None, max_score: float = 10.0) -> float | None:
    """A judge reply's score in [0, 1], or ``None`` when it has none or it is out of range.

    The last "Score: N/M" / "N out of M" wins (judges often restate the scale first); a reply
    that is only a number is read on the ``max_score`` scale.

    >>> parse_score("Clear and right. Score: 7/10"), parse_score("8"), parse_score("great!")
    (0.7, 0.8, None)
    """
    if not isinstance(reply, str):
        return None
    for pattern in _SCORE_PATTERNS:
        matches = pattern.findall(reply)
        if matches:
            last = matches[-1]
            value, scale = (last, str(max_score)) if isinstance(last, str) else last
            return _normalise(float(value), float(scale))
    bare = _BARE_NUMBER.fullmatch(reply)
    if bare:
        return _normalise(float(bare.group(1)), max_score)
    return None


def _normalise(value: float, scale: float) -> float | None:
    if scale <= 0 or not 0 <= value <= scale:
        return None
    return value / scale


def _prompt_text(prompt: Any) -> str:
    # Chat prompts: show the user turns, not the system prompt.
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return "\n\n".join(completion_text([m]) for m in users) or completion_text(prompt)
    return completion_text(prompt)


class _LocalJudge:
    """A transformers causal LM, loaded on first use, greedy decoding."""

    _lock = threading.Lock()
    _loaded: dict[str, tuple[Any, Any]] = {}

    def __init__(self, path: str, max_new_tokens: int):
        self.path, self.max_new_tokens = path, max_new_tokens

    def __call__(self, prompt: str) -> str:
        import torch

        model, tokenizer = self._load()
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = prompt
        inputs = tokenizer(text, return_tensors="pt").to(model.device)
        with torch.no_grad():
            out = model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self.path not in self._loaded:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(self.path)
                model = AutoModelForCausalLM.from_pretrained(self.path)
                model.eval()
                self._loaded[self.path] = (model, tokenizer)
            return self._loaded[self.path]


class _EndpointJudge:
    """POST /chat/completions on an OpenAI-compatible server."""

    def __init__(
        self, url: str, model_name: str, api_key_env: str | None, max_tokens: int, timeout: float
    ):
        self.url = url.rstrip("/") + "/chat/completions"
        self.model_name, self.max_tokens, self.timeout = model_name, max_tokens, timeout
        self.api_key_env = api_key_env

    def __call__(self, prompt: str) -> str:
        body = {
            "model": self.model_name,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            reply = json.loads(response.read().decode())
        return reply["choices"][0]["message"]["content"]


class JudgeCache:
    """Verdicts by key: a dict, mirrored to one small JSON file per key under ``directory``."""

    def __init__(self, directory: str | None = None):
        self._memory: dict[str, float | None] = {}
        self._lock = threading.Lock()
        self.directory = Path(directory) if directory else None
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> tuple[bool, float | None]:
        with self._lock:
            if key in self._memory:
                return True, self._memory[key]
        if self.directory:
            path = self.directory / f"{key}.json"
            try:
                score = json.loads(path.read_text())["score"]
            except (OSError, ValueError, KeyError):
                return False, None
            with self._lock:
                self._memory[key] = score
            return True, score
        return False, None

    def put(self, key: str, score: float | None, reply: str) -> None:
        with self._lock:
            self._memory[key] = score
        if self.directory:
            tmp = self.directory / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
            tmp.write_text(json.dumps({"score": score, "reply": reply}))
            tmp.replace(self.directory / f"{key}.json")


def _check_allowed(model: Any, url: Any, api_key_env: Any, cache_dir: Any) -> None:
    from pipeline import access

    outside = access.path_error(model, "model", access.allowed_roots())
    problems = {
        "url": access.judge_url_error(url) if url else None,
        "api_key_env": access.judge_key_env_error(api_key_env),
        "cache_dir": access.judge_cache_error(cache_dir),
        "model": outside[0]["msg"] if outside else None,
    }
    for name, problem in problems.items():
        if problem:
            raise ValueError(f"{name}: {problem}")


def _cache_folder(run_dir: Any, cache_dir: str) -> Path | None:
    if run_dir is None or not cache_dir:
        return None  # memory only
    root = Path(run_dir).resolve()
    folder = (root / cache_dir).resolve()
    if not folder.is_relative_to(root):  # a symlink out of the run folder
        raise ValueError(f"cache_dir: {cache_dir} leads out of the run folder")
    return folder


@register(
    "judge",
    "A generative reward model scores each completion in [0, 1]: a local transformers model "
    "(model=<folder>) or an OpenAI-compatible endpoint (url=http://host/v1, model_name), a prompt "
    "template with {prompt} {completion} {reference}, cached in the run folder. Params: model, "
    "url (an endpoint the admin allowed), model_name, template, max_score, reference_column, "
    "cache_dir (a folder in the run folder), max_new_tokens, timeout, concurrency, api_key_env "
    "(a variable the admin allowed).",
)
def judge_reward(
    *,
    model: str | None = None,
    url: str | None = None,
    model_name: str = "judge",
    template: str = DEFAULT_JUDGE_TEMPLATE,
    max_score: float = 10.0,
    reference_column: str = "answer",
    cache_dir: str = "judge-cache",
    max_new_tokens: int = 256,
    timeout: float = 60.0,
    concurrency: int = 4,
    api_key_env: str | None = None,
    run_dir: str | os.PathLike | None = None,
) -> RewardFunc:
    """Judge-model reward; an unparsable verdict or a failed call scores ``None``.

    ``run_dir`` comes from the stage, not the config: the disk cache lives under it.
    """
    if bool(model) == bool(url):
        raise ValueError("give exactly one of model (a local folder) or url (an endpoint)")
    if "{completion}" not in template:
        raise ValueError("template must contain {completion}")
    _check_allowed(model, url, api_key_env, cache_dir)
    call = (
        _LocalJudge(model, max_new_tokens)
        if model
        else _EndpointJudge(url, model_name, api_key_env, max_new_tokens, timeout)
    )
    identity = json.dumps([model, url, model_name, max_score, max_new_tokens])
    cache = JudgeCache(_cache_folder(run_dir, cache_dir))

    def judge_one(filled: str) -> float | None:
        key = hashlib.sha256((identity + "\0" + filled).encode()).hexdigest()
        hit, score = cache.get(key)
        if hit:
            return score
        reply = call(filled)
        score = parse_score(reply, max_score)
        cache.put(key, score, reply)
        return score

    def reward(prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float | None]:
        completions = list(completions or [])
        n = len(completions)
        prompts = list(prompts) if isinstance(prompts, list | tuple) else [prompts] * n
        filled: list[str] = []
        for i, completion in enumerate(completions):
            reference = row_columns(kwargs, i, n).get(reference_column)
            values = {
                "prompt": _prompt_text(prompts[i] if i < len(prompts) else ""),
                "completion": completion_text(completion),
                "reference": "" if reference is None else str(reference),
            }
            # str.replace, not format: completions are full of braces (code, LaTeX).
            text = template
            for name, value in values.items():
                text = text.replace("{" + name + "}", value)
            filled.append(text)

        def safe(text: str) -> float | None:
            try:
                return judge_one(text)
            except Exception:
                logger.exception("judge call failed; scored None")
                return None

        unique = list(dict.fromkeys(filled))  # a group often repeats a completion: judge it once
        workers = 1 if model else max(1, concurrency)  # one local model: calls in turn
        with ThreadPoolExecutor(max_workers=workers) as pool:
            verdicts = dict(zip(unique, pool.map(safe, unique), strict=True))
        return [verdicts[text] for text in filled]

    return reward
