// steem-js 0.7 ships no types; the part the tests use.
declare module 'steem' {
  type Callback<T> = (err: Error | null, result: T) => void;
  const steem: {
    api: {
      setOptions(options: { url: string }): void;
      getDynamicGlobalPropertiesAsync(): Promise<Record<string, unknown>>;
      getBlockAsync(n: number): Promise<Record<string, unknown> | null>;
      getOpsInBlockAsync(n: number, onlyVirtual: boolean): Promise<unknown[]>;
      streamOperations(mode: 'head' | 'irreversible', callback: Callback<[string, Record<string, unknown>]>): () => void;
    };
  };
  export default steem;
}
