// The Hydrogen test wallet's EIP-1193 provider, injected before a page's own scripts.
// It holds no key: every request crosses to Python (the binding __hydrogenWalletRequest),
// which signs and forwards to the sandbox's JSON-RPC. Errors are EIP-1193 errors
// (an Error with `code`, and `data` when the node gave some); a user rejection is 4001.
(() => {
  if (window.__hydrogenWalletEmit) return;
  const listeners = new Map();
  const emit = (event, payload) => {
    for (const listener of [...(listeners.get(event) || [])]) {
      try { listener(payload); } catch (error) { setTimeout(() => { throw error; }); }
    }
  };
  const providerError = (code, message, data) => {
    const error = new Error(message);
    error.code = code;
    if (data !== undefined && data !== null) error.data = data;
    return error;
  };
  const provider = {
    isHydrogenTestWallet: true,
    async request(args) {
      if (!args || typeof args !== 'object' || typeof args.method !== 'string') {
        throw providerError(-32600, 'Invalid request: expected {method, params}');
      }
      const params = args.params === undefined ? [] : args.params;
      const answer = await window.__hydrogenWalletRequest(args.method, params);
      for (const [event, payload] of answer.events || []) setTimeout(() => emit(event, payload));
      if (answer.error) throw providerError(answer.error.code, answer.error.message, answer.error.data);
      return answer.result;
    },
    on(event, listener) {
      if (!listeners.has(event)) listeners.set(event, []);
      listeners.get(event).push(listener);
      return provider;
    },
    removeListener(event, listener) {
      const list = listeners.get(event) || [];
      const at = list.indexOf(listener);
      if (at >= 0) list.splice(at, 1);
      return provider;
    },
  };
  provider.off = provider.removeListener;
  Object.defineProperty(window, '__hydrogenWalletEmit', { value: emit });
  Object.defineProperty(window, 'ethereum', { value: provider, configurable: true, writable: false });

  // EIP-6963: announce now and whenever a page asks.
  const info = Object.freeze({
    uuid: crypto.randomUUID ? crypto.randomUUID() : '6f6a3c3e-0000-4000-8000-000000000016',
    name: 'Hydrogen test wallet',
    icon: 'data:image/svg+xml,%3Csvg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"%3E%3Crect width="8" height="8" fill="%2339c"/%3E%3C/svg%3E',
    rdns: 'network.crynux.hydrogen.testwallet',
  });
  const announce = () => window.dispatchEvent(
    new CustomEvent('eip6963:announceProvider', { detail: Object.freeze({ info, provider }) }));
  window.addEventListener('eip6963:requestProvider', announce);
  announce();

  // EIP-1193 `connect`: the provider can serve requests for this chain.
  setTimeout(async () => {
    try {
      const state = await window.__hydrogenWalletState();
      emit('connect', { chainId: state.chainId });
    } catch (error) { /* the page went away */ }
  });
})();
