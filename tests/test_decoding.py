import torch

from attn_course.decoding import kv_cache_bytes, measure_decoding, measure_generation
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


def test_measure_generation_times_both_ways_and_counts_the_tokens_fed():
    fed = {True: [], False: []}

    class Recorder(TinyLanguageModel):
        def forward(self, tokens, caches=None):
            fed[caches is not None].append(tokens.size(1))
            return super().forward(tokens, caches)

    torch.manual_seed(0)
    model = Recorder(vocab_size=7, d_model=16, num_heads=4, num_kv_heads=2, num_layers=2).eval()
    T0, new = 5, 4
    cost = measure_generation(model, torch.randint(7, (2, T0)), new, repeats=2)
    assert (cost.prompt_len, cost.new_tokens) == (T0, new)
    runs = 3  # one warm-up and two timed runs each
    assert fed[True] == [T0, 1, 1, 1] * runs  # the prompt once, then one token a step
    assert fed[False] == [5, 6, 7, 8] * runs  # the whole sequence at every step
    assert cost.tokens_fed_with_cache == sum(fed[True]) // runs == T0 + new - 1
    assert cost.tokens_fed_without_cache == sum(fed[False]) // runs
    assert cost.seconds_with_cache > 0 and cost.seconds_without_cache > 0
    assert cost.speedup == cost.seconds_without_cache / cost.seconds_with_cache
