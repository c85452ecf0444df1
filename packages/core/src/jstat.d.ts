/** The part of jStat (npm `jstat`, which ships no types) that l2l uses. */
declare module 'jstat' {
  export const jStat: {
    studentt: {
      /** Quantile (inverse CDF) of Student's t distribution with `dof` degrees of freedom. */
      inv(p: number, dof: number): number;
    };
  };
}
