"""Model files whose strings mention code: reproducible, read by the analyzer, loaded with no dangerous event."""

from __future__ import annotations

from safepickle_bench.datasets.carriers import code_mentions


def test_code_mention_files_are_reproducible_analysed_and_load_without_dangerous_events(
    produced, analyzer_reads, oracle_loads_clean
):
    files = produced(code_mentions.PRODUCERS, 2)
    assert {f.kind for _, f in files} == {"torch_with_config", "tokenizer_vocab", "sklearn_documented",
                                          "config_with_blobs"}
    analyzer_reads([p for p, _ in files])
    oracle_loads_clean([(p, f.loader) for p, f in files])


def test_tokenizer_and_config_strings_mention_code_words(produced):
    data = b"".join(p.read_bytes() for p, f in produced(code_mentions.PRODUCERS[1:2] + code_mentions.PRODUCERS[3:], 3))
    assert sum(word in data for word in (b"exec", b"system", b"subprocess", b"eval", b"127.0.0.1", b"/tmp")) >= 4
