pragma circom 2.1.0;

// C = A·B for private matrices A (n×m) and B (m×p); C is public.
// One multiplication constraint per product; the sums are linear and cost nothing.
template MatMul(n, m, p) {
    signal input a[n][m];
    signal input b[m][p];
    signal output c[n][p];
    signal prod[n][p][m];
    for (var i = 0; i < n; i++) {
        for (var j = 0; j < p; j++) {
            var acc = 0;
            for (var k = 0; k < m; k++) {
                prod[i][j][k] <== a[i][k] * b[k][j];
                acc += prod[i][j][k];
            }
            c[i][j] <== acc;
        }
    }
}
