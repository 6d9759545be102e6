"""The reference's own tests: each component against hand-computed values, brute force, exact arithmetic and its
invariants; bad input raises OracleInputError naming the argument."""
