/**
 * The part of uri-template-router 1.0.0 (CommonJS, no types of its own)
 * that Herald uses. Kept internal: no declaration Herald publishes names it.
 */
declare module 'uri-template-router' {
  /** A successful match. */
  interface Result {
    readonly uri: string;
    readonly params: Readonly<Record<string, unknown>> | undefined;
  }

  class Router {
    constructor();
    /** Compiles `template` into the router's state machine; throws `Error` on a template it cannot reverse. */
    addTemplate(template: string, options?: object, matchValue?: unknown): unknown;
    /** The best match of `uri` among the templates, or `undefined`. */
    resolveURI(uri: string): Result | undefined;
  }

  const pkg: { readonly Router: typeof Router };
  export default pkg;
}
