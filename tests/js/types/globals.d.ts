// What the README's snippets take as given: a key, a user, a message list, an SDK constructor...
declare const key: string;
declare const userId: string;
declare const OPENAI_KEY: string;
declare const ANTHROPIC_KEY: string;
declare const MANUAL_TEXT: string;
declare const messages: import("sturdy-llm").ChatMessage[];
declare const controller: AbortController;
declare const url: string;
declare const body: string;
declare const env: any;
declare function render(text: string): void;
declare function handle(value: unknown): void;
declare function localTime(city: string): string;
/** The SDKs' constructors as far as the README uses them: they take a fetch. */
type SdkFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
declare class OpenAI { constructor(options: { fetch?: SdkFetch; maxRetries?: number }) }
declare class Anthropic { constructor(options: { fetch?: SdkFetch; maxRetries?: number }) }
declare function createOpenAI(options: { fetch?: SdkFetch }): unknown;
