pragma circom 2.1.0;

// A sized workload for benchmarks: n chained squarings, one public output.
// y = (((x² + k)² + k)² + …) with n multiplication constraints.
template SquareChain(n) {
    signal input x;
    signal input k;
    signal output y;
    signal t[n];
    t[0] <== x * x + k;
    for (var i = 1; i < n; i++) {
        t[i] <== t[i - 1] * t[i - 1] + k;
    }
    y <== t[n - 1];
}
