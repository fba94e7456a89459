// steem-js 0.7 ships no types; the parts the tests use (devnode checks its transactions with steem-js end to end).
declare module 'steem' {
  type Callback<T> = (err: Error | null, result: T) => void;
  interface Authority {
    weight_threshold: number;
    key_auths: Array<[string, number]>;
  }
  const steem: {
    api: {
      setOptions(options: { url: string }): void;
      getAccountsAsync(names: string[]): Promise<Array<{ name: string; posting: Authority; active: Authority }>>;
      getDynamicGlobalPropertiesAsync(): Promise<Record<string, unknown>>;
      getBlockAsync(n: number): Promise<Record<string, unknown> | null>;
      getOpsInBlockAsync(n: number, onlyVirtual: boolean): Promise<unknown[]>;
      streamOperations(mode: 'head' | 'irreversible', callback: Callback<[string, Record<string, unknown>]>): () => void;
    };
    auth: {
      isWif(key: string): boolean;
      wifToPublic(key: string): string;
    };
    broadcast: {
      voteAsync(wif: string, voter: string, author: string, permlink: string, weight: number): Promise<unknown>;
      commentAsync(
        wif: string,
        parentAuthor: string,
        parentPermlink: string,
        author: string,
        permlink: string,
        title: string,
        body: string,
        jsonMetadata: string,
      ): Promise<unknown>;
      transferAsync(wif: string, from: string, to: string, amount: string, memo: string): Promise<unknown>;
      customJsonAsync(wif: string, requiredAuths: string[], requiredPostingAuths: string[], id: string, json: string): Promise<unknown>;
    };
  };
  export default steem;
}
