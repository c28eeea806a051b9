// The machine's memory roofline, measured like STREAM and without TensorFlow: the best
// time of a kernel that reads R arrays and writes W arrays of the same bytes, with
// ordinary or non-temporal (streaming) stores, on T threads.  stratbench/roofline.py
// builds and runs it; a case's roofline time is this time for its own reads, writes
// and footprint, so no kernel of that traffic should beat it.
//
//   bandwidth THREADS MIN_TRIALS TRIAL_BUDGET_S R:W:ARRAY_BYTES:STORE ...
//   -> one line per pattern: R W ARRAY_BYTES THREADS STORE SECONDS_PER_PASS
//
// A pass is one sweep over every array; passes repeat inside one parallel region (a
// barrier between them, not a fork and join) until a trial lasts about a millisecond,
// and the best trial counts, as STREAM takes its best of NTIMES.
//
// Built as a shared library too (stratbench_roofline_*, below): the paired roofline of a
// comparison group, timed in the worker's own rounds beside the strategies.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifdef __AVX__
typedef __m256 vec;
#define VLOAD _mm256_load_ps
#define VSTORE _mm256_store_ps
#define VSTREAM _mm256_stream_ps
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VSET1 _mm256_set1_ps
#define VZERO _mm256_setzero_ps
#else
typedef __m128 vec;
#define VLOAD _mm_load_ps
#define VSTORE _mm_store_ps
#define VSTREAM _mm_stream_ps
#define VADD _mm_add_ps
#define VSUB _mm_sub_ps
#define VSET1 _mm_set1_ps
#define VZERO _mm_setzero_ps
#endif
constexpr long kLanes = sizeof(vec) / sizeof(float);

volatile float sink;  // read-only passes leave their sum here, so no compiler drops them

struct Pattern {
  int reads, writes;
  long array_bytes;
  bool streaming;
};

template <bool kStream>
inline void put(float* p, vec v) {
  if (kStream) VSTREAM(p, v); else VSTORE(p, v);
}

// One thread's share [begin, end) of one pass, in vectors.
template <bool kStream>
float sweep(const Pattern& p, float* const* a, long begin, long end) {
  float* in0 = a[0];
  float* in1 = a[1];
  float* out0 = a[p.reads];
  float* out1 = a[p.reads + 1];
  vec s0 = VZERO(), s1 = VZERO(), s2 = VZERO(), s3 = VZERO();
  const vec c = VSET1(1.0f);
  long i = begin * kLanes, n = end * kLanes;
  if (p.reads == 0 && p.writes == 1) {
    for (; i < n; i += kLanes) put<kStream>(out0 + i, c);
  } else if (p.reads == 1 && p.writes == 0) {  // four sums: loads, not the add chain, bound it
    for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
      s0 = VADD(s0, VLOAD(in0 + i));
      s1 = VADD(s1, VLOAD(in0 + i + kLanes));
      s2 = VADD(s2, VLOAD(in0 + i + 2 * kLanes));
      s3 = VADD(s3, VLOAD(in0 + i + 3 * kLanes));
    }
    for (; i < n; i += kLanes) s0 = VADD(s0, VLOAD(in0 + i));
  } else if (p.reads == 1 && p.writes == 1) {
    for (; i < n; i += kLanes) put<kStream>(out0 + i, VLOAD(in0 + i));
  } else if (p.reads == 2 && p.writes == 1) {
    for (; i < n; i += kLanes) put<kStream>(out0 + i, VADD(VLOAD(in0 + i), VLOAD(in1 + i)));
  } else if (p.reads == 2 && p.writes == 2) {
    for (; i < n; i += kLanes) {
      vec x = VLOAD(in0 + i), y = VLOAD(in1 + i);
      put<kStream>(out0 + i, VADD(x, y));
      put<kStream>(out1 + i, VSUB(x, y));
    }
  }
  alignas(32) float lanes[kLanes];
  VSTORE(lanes, VADD(VADD(s0, s1), VADD(s2, s3)));
  float total = 0;
  for (long k = 0; k < kLanes; ++k) total += lanes[k];
  return total;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Seconds of `passes` passes on `threads` threads, the work split as OpenMP's static schedule does.
double timed(const Pattern& p, float* const* a, long vectors, int threads, long passes) {
  double start = 0, stop = 0;
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    long begin = vectors * t / nt, end = vectors * (t + 1) / nt;
    float total = 0;
#pragma omp barrier
#pragma omp master
    start = now();
    for (long k = 0; k < passes; ++k) {
      total += p.streaming ? sweep<true>(p, a, begin, end) : sweep<false>(p, a, begin, end);
      if (p.streaming) _mm_sfence();
      asm volatile("" ::: "memory");
#pragma omp barrier
    }
#pragma omp master
    stop = now();
    if (total == 12345.0f) sink = total;
  }
  return stop - start;
}

// An array of `vectors` vectors, first touched on the threads that will sweep each part,
// as TF's own first touch would; null when out of memory.
float* fresh_array(long vectors, int threads) {
  float* fresh = static_cast<float*>(std::aligned_alloc(64, (vectors * sizeof(vec) + 63) / 64 * 64));
  if (!fresh) return nullptr;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (long v = 0; v < vectors; ++v)
    for (long l = 0; l < kLanes; ++l) fresh[v * kLanes + l] = 0.5f + (float)l;
  return fresh;
}

// The library: one traffic pattern's arrays, kept between calls.
struct Roofline {
  Pattern pattern;
  long vectors;
  std::vector<float*> arrays;
};

extern "C" {

// The arrays of R reads and W writes of ARRAY_BYTES each, first touched on THREADS
// threads; null when the pattern is not one the kernel has or memory runs out.
void* stratbench_roofline_open(int reads, int writes, long array_bytes, int threads) {
  if (reads < 0 || reads > 2 || writes < 0 || writes > 2 || reads + writes == 0 || (reads == 0 && writes == 2) ||
      array_bytes <= 0 || threads < 1)
    return nullptr;
  const long vectors = std::max(1L, (array_bytes + (long)sizeof(vec) - 1) / (long)sizeof(vec));
  auto* r = new Roofline{{reads, writes, array_bytes, false}, vectors, {}};
  for (int j = 0; j < reads + writes; ++j) {
    r->arrays.push_back(fresh_array(r->vectors, threads));
    if (!r->arrays.back()) {
      r->arrays.pop_back();
      for (float* a : r->arrays) std::free(a);
      delete r;
      return nullptr;
    }
  }
  while (r->arrays.size() < 4) r->arrays.push_back(r->arrays[0]);
  return r;
}

// Seconds per pass of `passes` passes on `threads` threads, with streaming or ordinary stores.
double stratbench_roofline_seconds(void* handle, int streaming, int threads, long passes) {
  auto* r = static_cast<Roofline*>(handle);
  Pattern p = r->pattern;
  p.streaming = streaming && p.writes;
  passes = std::max(1L, passes);
  return timed(p, r->arrays.data(), r->vectors, std::max(1, threads), passes) / passes;
}

void stratbench_roofline_close(void* handle) {
  auto* r = static_cast<Roofline*>(handle);
  for (int j = 0; j < r->pattern.reads + r->pattern.writes; ++j) std::free(r->arrays[j]);
  delete r;
}
}

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s THREADS MIN_TRIALS TRIAL_BUDGET_S R:W:ARRAY_BYTES:ordinary|streaming ...\n", argv[0]);
    return 2;
  }
  int threads = std::atoi(argv[1]), min_trials = std::atoi(argv[2]);
  double budget = std::atof(argv[3]);
  std::vector<Pattern> patterns;
  for (int arg = 4; arg < argc; ++arg) {
    Pattern p{};
    char store[32] = {0};
    if (std::sscanf(argv[arg], "%d:%d:%ld:%31s", &p.reads, &p.writes, &p.array_bytes, store) != 4 ||
        p.reads < 0 || p.reads > 2 || p.writes < 0 || p.writes > 2 || p.reads + p.writes == 0 ||
        (p.reads == 0 && p.writes == 2) || p.array_bytes <= 0 ||
        (std::strcmp(store, "ordinary") && std::strcmp(store, "streaming"))) {
      std::fprintf(stderr, "bad pattern %s: want R:W:ARRAY_BYTES:ordinary|streaming, R and W 0-2 "
                   "(0:1, 1:0, 1:1, 2:1 or 2:2)\n", argv[arg]);
      return 2;
    }
    p.streaming = !std::strcmp(store, "streaming");
    patterns.push_back(p);
  }
  // Patterns of one array size share their arrays: each is allocated and first touched once
  // per invocation (touching fresh memory took most of a pass over 256 MiB arrays).
  std::vector<size_t> order(patterns.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t l, size_t r) { return patterns[l].array_bytes < patterns[r].array_bytes; });
  std::vector<float*> a(4, nullptr);
  int touched = 0;  // arrays of the current size allocated and first touched
  long size = 0;
  for (size_t k : order) {
    const Pattern& p = patterns[k];
    long vectors = std::max(1L, (p.array_bytes + (long)sizeof(vec) - 1) / (long)sizeof(vec));
    if (p.array_bytes != size) {
      for (int j = 0; j < touched; ++j) std::free(a[j]);
      touched = 0;
      size = p.array_bytes;
    }
    for (; touched < p.reads + p.writes; ++touched) {
      a[touched] = fresh_array(vectors, threads);
      if (!a[touched]) { std::fprintf(stderr, "out of memory for %s\n", argv[4 + k]); return 3; }
    }
    std::vector<float*> arrays(a);
    for (int j = touched; j < 4; ++j) arrays[j] = a[0];
    long passes = 1;
    timed(p, arrays.data(), vectors, threads, 1);  // warm: caches, pages, thread team
    while (passes < (1L << 30)) {  // about a millisecond a trial, so the clock and barrier do not count
      double s = timed(p, arrays.data(), vectors, threads, passes);
      if (s >= 1e-3) break;
      passes *= 2;
    }
    double best = 1e30, spent = 0;
    for (int trial = 0; trial < min_trials || spent < budget; ++trial) {
      double s = timed(p, arrays.data(), vectors, threads, passes);
      best = std::min(best, s / passes);
      spent += s;
      if (trial > 200) break;
    }
    std::printf("%d %d %ld %d %s %.6e\n", p.reads, p.writes, p.array_bytes, threads,
                p.streaming ? "streaming" : "ordinary", best);
    std::fflush(stdout);
  }
  for (int j = 0; j < touched; ++j) std::free(a[j]);
  return 0;
}
