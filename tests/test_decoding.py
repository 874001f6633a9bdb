import torch

from attn_course.decoding import kv_cache_bytes, measure_decoding
from attn_course.reference import KVCache, TinyLanguageModel


def test_kv_cache_bytes_counts_keys_and_values_of_every_layer():
    caches = [KVCache(), KVCache(), KVCache()]
    caches[0].append(torch.zeros(2, 3, 5, 4), torch.zeros(2, 3, 5, 4))  # float32: 4 bytes
    caches[1].append(torch.zeros(2, 3, 5, 4, dtype=torch.float16), torch.zeros(2, 3, 5, 4))
    assert kv_cache_bytes(caches) == 2 * 120 * 4 + 120 * 2 + 120 * 4  # caches[2] is empty
    assert kv_cache_bytes([]) == 0


def test_measure_decoding_reports_the_prompts_cache_and_leaves_it_equal_each_run():
    calls = []

    class Recorder(TinyLanguageModel):
        def forward(self, tokens, caches=None):
            calls.append((tokens.size(1), [len(c) for c in caches]))
            return super().forward(tokens, caches)

    torch.manual_seed(0)
    B, T, D, H, G, layers = 2, 10, 16, 4, 2, 3
    model = Recorder(vocab_size=7, d_model=D, num_heads=H, num_kv_heads=G, num_layers=layers)
    cost = measure_decoding(model, torch.randint(7, (B, T)), repeats=3)
    assert cost.cache_bytes == 2 * layers * B * G * T * (D // H) * 4  # keys and values, float32
    assert cost.step_seconds > 0
    prompt, *steps = calls
    assert prompt == (T, [0, 0, 0])
    assert steps == [(1, [T, T, T])] * 4  # one warm-up and three timed runs, all from T cached


def test_fewer_key_value_heads_make_a_proportionally_smaller_cache():
    prompt = torch.randint(7, (1, 12))
    sizes = {}
    for G in (4, 2, 1):
        torch.manual_seed(0)
        model = TinyLanguageModel(7, 16, 4, G, 2)
        sizes[G] = measure_decoding(model, prompt, repeats=1).cache_bytes
    assert sizes[4] == 2 * sizes[2] == 4 * sizes[1]
