/*
 * Mesh Lab Shop: the storefront served by the api-gateway at "/".
 *
 * Plain JavaScript, no build step, no third-party code, so it works offline and a learner can read it top to bottom.
 * Every call goes to the same origin's /api/..., so it works through any ingress or port-forward without CORS.
 *
 * What it must make visible: which payment version served each checkout (header X-Payment-Version), and failures
 * (often injected on purpose) as honest messages, never a blank page or a console error.
 */
(function () {
  'use strict';

  var STORAGE_KEYS = {
    userId: 'meshlab.userId',
    versions: 'meshlab.paymentVersions'
  };
  var USER_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
  var GET_ATTEMPTS = 4;            // one try plus three retries: enough to ride out a 5% injected error rate
  var RETRY_BASE_DELAY_MS = 400;   // doubled after each failed attempt
  var REQUEST_TIMEOUT_MS = 10000;
  var CHECKOUT_TIMEOUT_MS = 30000; // above the gateway's CHECKOUT_TIMEOUT_S (25 s), so the gateway answers first
  var RECENT_VERSIONS_KEPT = 20;
  var LIST_ENTRIES_SHOWN = 10;

  // ------------------------------------------------------------------------------------------------------------
  // Storage. The shopper id lives in sessionStorage: each tab or window is its own shopper (so two windows are two
  // shoppers with two carts) and keeps its id across reloads. The v1/v2 count lives in localStorage: it is the
  // count for this browser, shared by all its tabs. Either store may be missing or throw (private mode, disabled
  // storage); the page then keeps the value in memory, for this page load only.
  // ------------------------------------------------------------------------------------------------------------
  var memoryStore = {};
  function storageArea(name) {
    try {
      return window[name] || null;
    } catch (e) {
      return null;              // some browsers throw on merely reading window.localStorage when storage is off
    }
  }
  function storageGet(areaName, key) {
    try {
      var value = storageArea(areaName).getItem(key);
      return value === null ? memoryStore[areaName + ':' + key] || null : value;
    } catch (e) {
      return memoryStore[areaName + ':' + key] || null;
    }
  }
  function storageSet(areaName, key, value) {
    memoryStore[areaName + ':' + key] = value;
    try {
      storageArea(areaName).setItem(key, value);
    } catch (e) {
      /* memory only */
    }
  }

  function randomHex(bytes) {
    var buffer = new Uint8Array(bytes);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(buffer);
    } else {
      for (var i = 0; i < bytes; i++) buffer[i] = Math.floor(Math.random() * 256);
    }
    return Array.prototype.map.call(buffer, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  // One shopper per tab or window (see Storage above).
  function loadUserId() {
    var stored = storageGet('sessionStorage', STORAGE_KEYS.userId);
    if (stored && USER_ID_PATTERN.test(stored)) return stored;
    return newUserId();
  }
  function newUserId() {
    var id = 'shopper-' + randomHex(5);
    storageSet('sessionStorage', STORAGE_KEYS.userId, id);
    return id;
  }

  // ------------------------------------------------------------------------------------------------------------
  // The API client. It never throws: every outcome, including a network error or an HTML error page from a proxy,
  // becomes a result object the UI can describe.
  // ------------------------------------------------------------------------------------------------------------
  function sleep(ms) {
    return new Promise(function (resolve) { window.setTimeout(resolve, ms); });
  }

  function request(method, path, options) {
    options = options || {};
    var headers = { 'Accept': 'application/json', 'x-user': state.userId };
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    if (options.headers) {
      Object.keys(options.headers).forEach(function (name) { headers[name] = options.headers[name]; });
    }
    var controller = window.AbortController ? new AbortController() : null;
    var timeoutMs = options.timeoutMs || REQUEST_TIMEOUT_MS;
    var timer = controller ? window.setTimeout(function () { controller.abort(); }, timeoutMs) : null;
    var init = { method: method, headers: headers, cache: 'no-store', credentials: 'same-origin' };
    if (controller) init.signal = controller.signal;
    if (options.body !== undefined) init.body = JSON.stringify(options.body);

    return window.fetch(path, init).then(function (response) {
      return response.text().then(function (text) {
        var result = {
          ok: response.ok, status: response.status, headers: response.headers, data: null, nonJson: false
        };
        if (text) {
          try {
            result.data = JSON.parse(text);
          } catch (e) {
            result.nonJson = true;
          }
        }
        if (result.ok && (result.data === null || typeof result.data !== 'object')) {
          result.ok = false;          // a 2xx without the JSON the contract promises is still a failure for us
          result.nonJson = true;
        }
        return result;
      });
    }).catch(function (error) {
      var timedOut = error && error.name === 'AbortError';
      return { ok: false, status: 0, headers: null, data: null, networkError: true, timedOut: timedOut,
               timeoutMs: timeoutMs };
    }).then(function (result) {
      if (timer) window.clearTimeout(timer);
      return result;
    });
  }

  function isRetryable(result) {
    return result.networkError || result.nonJson || result.status >= 500 || result.status === 429;
  }

  // GETs are safe to repeat: retry a few times with backoff, telling the shopper what is happening.
  function getWithRetry(path, what, notice) {
    var attempt = 1;
    function tryOnce() {
      return request('GET', path).then(function (result) {
        if (result.ok || !isRetryable(result) || attempt >= GET_ATTEMPTS) return result;
        var delay = RETRY_BASE_DELAY_MS * Math.pow(2, attempt - 1);
        attempt += 1;
        showNotice(notice, 'warning', describeFailure(result, what) + ', retrying (attempt ' + attempt + ' of ' +
          GET_ATTEMPTS + ')…');
        return sleep(delay).then(tryOnce);
      });
    }
    return tryOnce().then(function (result) {
      result.attempts = attempt;
      return result;
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Describing failures honestly. Injected faults say so in their JSON body ("injected": true, "fault": ...),
  // possibly one level down when a service passes on what its neighbour answered.
  // ------------------------------------------------------------------------------------------------------------
  function findInjectedFault(data) {
    if (!data || typeof data !== 'object') return null;
    if (data.injected === true) return data;
    var keys = Object.keys(data);
    for (var i = 0; i < keys.length; i++) {
      var inner = data[keys[i]];
      if (inner && typeof inner === 'object' && !Array.isArray(inner) && inner.injected === true) return inner;
    }
    return null;
  }

  var FAULT_WORDING = {
    decline: 'payment declined',
    timeout: 'payment timed out',
    error: 'error',
    sick: 'instance is sick',
    delay: 'slow answer'
  };

  function describeFailure(result, what) {
    if (result.networkError) {
      return result.timedOut
        ? what + ': no answer within ' + Math.round(result.timeoutMs / 1000) + ' s'
        : what + ': cannot reach the shop (network error)';
    }
    if (result.nonJson) return what + ': unexpected answer from the server (HTTP ' + result.status + ')';
    var data = result.data || {};
    var fault = findInjectedFault(data);
    if (fault) {
      var wording = FAULT_WORDING[fault.fault] || (fault.fault || 'failure');
      if (fault.fault === 'decline' || fault.fault === 'timeout') return wording + ' (injected fault)';
      return (fault.service || what) + ' ' + wording + ' (injected fault)';
    }
    if (result.status === 402) return 'payment declined' + (data.reason ? ': ' + data.reason : '');
    var upstream = typeof data.upstream === 'string' ? data.upstream : 'a service';
    if (result.status === 503) return what + ': ' + upstream + ' is unavailable right now (HTTP 503)';
    if (result.status === 504) return what + ': ' + upstream + ' took too long to answer (HTTP 504)';
    if (typeof data.error === 'string' && data.error) return what + ': ' + data.error;
    return what + ' failed (HTTP ' + result.status + ')';
  }

  // ------------------------------------------------------------------------------------------------------------
  // Small DOM helpers. Text always goes through textContent, never innerHTML: product names are data.
  // ------------------------------------------------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value === null || value === undefined || value === false) return;
      if (name === 'text') node.textContent = value;
      else if (name === 'className') node.className = value;
      else if (name === 'onClick') node.addEventListener('click', value);
      else node.setAttribute(name, value === true ? '' : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // Re-rendering replaces buttons; put the keyboard focus back on the control with the same id.
  function keepingFocus(render) {
    var active = document.activeElement;
    var id = active && active.id;
    render();
    if (id && document.activeElement !== active) {
      var again = $(id);
      if (again) again.focus();
    }
  }

  function showNotice(areaId, kind, text, actions) {
    var area = $(areaId);
    clear(area);
    if (!text) return;
    var box = el('div', { className: 'notice notice-' + kind, role: kind === 'error' ? 'alert' : null }, [
      el('p', { text: capitalise(text) })
    ]);
    if (actions && actions.length) {
      var row = el('div', { className: 'notice-actions' });
      actions.forEach(function (action) {
        row.appendChild(el('button', { type: 'button', id: action.id, className: 'button button-small',
                                       onClick: action.onClick, text: action.label }));
      });
      box.appendChild(row);
    }
    area.appendChild(box);
  }

  function capitalise(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function money(amount, currency) {
    var value = Number(amount);
    if (!isFinite(value)) return String(amount);
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency || 'USD' }).format(value);
    } catch (e) {
      return value.toFixed(2) + ' ' + (currency || '');
    }
  }

  function when(timestamp) {
    if (!timestamp) return '';
    var date = typeof timestamp === 'number' ? new Date(timestamp < 1e12 ? timestamp * 1000 : timestamp)
                                             : new Date(timestamp);
    return isNaN(date.getTime()) ? String(timestamp) : date.toLocaleString();
  }

  function versionBadge(version) {
    var known = version === 'v1' || version === 'v2';
    return el('span', {
      className: 'badge ' + (known ? 'badge-' + version : 'badge-unknown'),
      'data-testid': 'version-badge',
      title: known ? 'served by payment ' + version : 'payment version unknown'
    }, [known ? 'payment ' + version : 'payment ?']);
  }

  function paymentVersionOf(result) {
    var header = result.headers && result.headers.get('X-Payment-Version');
    if (header) return header.trim();
    var data = result.data || {};
    if (data.payment && typeof data.payment.version === 'string') return data.payment.version;
    if (typeof data.payment_version === 'string') return data.payment_version;
    return null;
  }

  // ------------------------------------------------------------------------------------------------------------
  // State
  // ------------------------------------------------------------------------------------------------------------
  var state = {
    userId: null,
    products: [],
    cart: null,
    cartBusy: false,
    checkoutBusy: false,
    // A quantity the page refused to send ({productId, text}), shown next to that line's field until the next change.
    quantityNote: null,
    // The checkout attempt that failed and may be retried with the same Idempotency-Key, so that a retry of an
    // attempt whose answer got lost can never charge twice.
    pendingCheckout: null
  };

  function userPath(prefix, suffix) {
    return '/api/' + prefix + '/' + encodeURIComponent(state.userId) + (suffix || '');
  }

  // ------------------------------------------------------------------------------------------------------------
  // Catalog
  // ------------------------------------------------------------------------------------------------------------
  function loadCatalog() {
    var list = $('product-list');
    list.setAttribute('aria-busy', 'true');
    showNotice('catalog-notice', 'info', 'Loading the products…');
    return getWithRetry('/api/products', 'catalog', 'catalog-notice').then(function (result) {
      list.setAttribute('aria-busy', 'false');
      if (!result.ok || !Array.isArray(result.data.products)) {
        var text = result.ok ? 'catalog: the answer has no product list' : describeFailure(result, 'catalog');
        showNotice('catalog-notice', 'error', text + '. The catalog could not be loaded after ' + result.attempts +
          ' attempts.', [{ id: 'retry-catalog', label: 'Try again', onClick: loadCatalog }]);
        if (!state.products.length) renderCatalog();
        return;
      }
      state.products = result.data.products;
      var retried = result.attempts > 1 ? ' (after ' + (result.attempts - 1) + ' retried error' +
        (result.attempts > 2 ? 's' : '') + ')' : '';
      showNotice('catalog-notice', retried ? 'success' : 'info',
        retried ? 'Catalog loaded' + retried + '.' : '');
      keepingFocus(renderCatalog);
    });
  }

  // Pictures are served by the gateway itself (/static/img/...), so they work offline; anything else (a URL to
  // another host) would need the internet, so the initials of the name stand in for it.
  function productArt(product) {
    var image = typeof product.image === 'string' ? product.image : '';
    if (/^\/static\/[A-Za-z0-9_./-]+$/.test(image) && image.indexOf('..') < 0) {
      return el('img', { className: 'product-art', src: image, alt: '', width: 120, height: 120, loading: 'lazy' });
    }
    var initials = String(product.name || '?').split(/\s+/).slice(0, 2)
      .map(function (word) { return word.charAt(0); }).join('');
    return el('div', { className: 'product-art', 'aria-hidden': 'true', text: initials });
  }

  function renderCatalog() {
    var list = $('product-list');
    clear(list);
    if (!state.products.length) {
      list.appendChild(el('li', { className: 'empty', text: 'No products to show yet.' }));
      return;
    }
    state.products.forEach(function (product) {
      var id = String(product.id);
      list.appendChild(el('li', { className: 'product', 'data-product-id': id }, [
        productArt(product),
        el('div', { className: 'product-info' }, [
          el('h3', { text: product.name || 'Product ' + id }),
          product.category ? el('p', { className: 'product-category', text: product.category }) : null,
          product.description ? el('p', { className: 'product-description', text: product.description }) : null
        ]),
        el('div', { className: 'product-buy' }, [
          el('p', { className: 'price', text: money(product.price, product.currency) }),
          el('button', {
            type: 'button', id: 'add-' + id, className: 'button button-primary add-to-cart',
            'aria-label': 'Add ' + (product.name || id) + ' to cart', text: 'Add to cart',
            onClick: function () { addToCart(product); }
          })
        ])
      ]));
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Cart
  // ------------------------------------------------------------------------------------------------------------
  // keepNotice: the caller has just said something in the cart notice (a failed change) that must stay readable.
  function loadCart(keepNotice) {
    var user = state.userId;
    return getWithRetry(userPath('cart'), 'cart', 'cart-notice').then(function (result) {
      if (user !== state.userId) return;   // the shopper changed meanwhile: this is someone else's cart
      if (!result.ok) {
        showNotice('cart-notice', 'error', describeFailure(result, 'cart') + '.',
          [{ id: 'retry-cart', label: 'Try again', onClick: function () { loadCart(); } }]);
        return;
      }
      if (keepNotice !== true) showNotice('cart-notice', 'info', '');
      setCart(result.data);
    });
  }

  function setCart(cart) {
    state.cart = cart;
    keepingFocus(renderCart);
  }

  // Cart changes run one at a time, so two quick clicks on "+" cannot race each other.
  function changeCart(method, path, body, doneText) {
    if (state.cartBusy) return Promise.resolve();
    state.cartBusy = true;
    state.quantityNote = null;
    var user = state.userId;
    $('cart').setAttribute('aria-busy', 'true');
    return request(method, path, { body: body }).then(function (result) {
      if (user !== state.userId) return null;
      if (result.ok) {
        setCart(result.data);
        showNotice('cart-notice', 'success', doneText);
        return null;
      }
      // Whatever the failure, show the cart as the server has it, never what the page hoped it would be.
      showNotice('cart-notice', 'error', describeFailure(result, 'cart') + '. That change was not made; the cart ' +
        'below is what the shop has now.');
      return loadCart(true);
    }).then(function () {
      state.cartBusy = false;
      $('cart').setAttribute('aria-busy', 'false');
    });
  }

  function addToCart(product) {
    var name = product.name || String(product.id);
    return changeCart('POST', userPath('cart', '/add'), { product_id: String(product.id), quantity: 1 },
      'Added ' + name + ' to your cart.');
  }

  // typed: the text of the field when the shopper typed the quantity, so the message can quote it.
  function setQuantity(item, quantity, typed) {
    // The cart accepts whole numbers from 1 to 99 only; anything else is refused here, before it is sent, and the
    // field goes back to the quantity the cart really holds.
    if (!(Number.isInteger(quantity) && quantity >= 1 && quantity <= 99)) {
      var shown = typed !== undefined ? typed : String(quantity);
      state.quantityNote = {
        productId: String(item.product_id),
        text: (shown ? shown + ' is not' : 'That is not') + ' a whole number from 1 to 99, so the quantity stays ' +
          item.quantity + '. Remove takes ' + (item.name || item.product_id) + ' out.'
      };
      keepingFocus(renderCart);
      return Promise.resolve();
    }
    if (quantity === item.quantity) return Promise.resolve();
    return changeCart('PUT', userPath('cart', '/items/' + encodeURIComponent(item.product_id)),
      { quantity: quantity }, item.name + ': quantity ' + quantity + '.');
  }

  function removeItem(item) {
    return changeCart('DELETE', userPath('cart', '/items/' + encodeURIComponent(item.product_id)), undefined,
      'Removed ' + item.name + ' from your cart.');
  }

  function renderCart() {
    var body = $('cart-body');
    var cart = state.cart || { items: [], total: '0.00', currency: 'USD', item_count: 0 };
    var items = Array.isArray(cart.items) ? cart.items : [];
    clear(body);
    $('cart-count').textContent = String(cart.item_count || 0);
    $('cart-total').textContent = money(cart.total || 0, cart.currency);
    $('checkout').setAttribute('aria-disabled', items.length ? 'false' : 'true');
    if (!items.length) {
      body.appendChild(el('p', { className: 'empty', text: 'Your cart is empty. Add something from the products.' }));
      return;
    }
    var list = el('ul', { className: 'cart-items' });
    items.forEach(function (item) {
      var pid = String(item.product_id);
      var name = item.name || pid;
      var inputId = 'qty-' + pid;
      var input = el('input', {
        id: inputId, type: 'number', inputmode: 'numeric', min: 1, max: 99, step: 1, value: item.quantity,
        className: 'quantity-input'
      });
      var note = state.quantityNote && state.quantityNote.productId === pid ? state.quantityNote.text : null;
      if (note) input.setAttribute('aria-describedby', 'qty-note-' + pid);
      input.addEventListener('change', function () {
        var typed = input.value.trim();
        setQuantity(item, typed === '' ? NaN : Number(typed), typed);
      });
      list.appendChild(el('li', { className: 'cart-item', 'data-product-id': pid }, [
        el('div', { className: 'cart-item-name' }, [
          el('span', { text: name }),
          el('span', { className: 'unit-price', text: money(item.unit_price, cart.currency) + ' each' })
        ]),
        el('div', { className: 'quantity' }, [
          el('button', { type: 'button', id: 'dec-' + pid, className: 'button button-small button-icon',
                         'aria-label': 'One less ' + name, text: '−',
                         onClick: function () {
                           if (item.quantity > 1) setQuantity(item, item.quantity - 1);
                           else removeItem(item);
                         } }),
          el('label', { 'for': inputId, className: 'visually-hidden', text: 'Quantity of ' + name }),
          input,
          el('button', { type: 'button', id: 'inc-' + pid, className: 'button button-small button-icon',
                         'aria-label': 'One more ' + name, text: '+',
                         onClick: function () { setQuantity(item, item.quantity + 1); } })
        ]),
        el('span', { className: 'line-total', text: money(item.line_total, cart.currency) }),
        el('button', { type: 'button', id: 'remove-' + pid, className: 'button button-small button-quiet',
                       'aria-label': 'Remove ' + name + ' from cart', text: 'Remove',
                       onClick: function () { removeItem(item); } }),
        note ? el('p', { id: 'qty-note-' + pid, className: 'field-note', role: 'alert', text: note }) : null
      ]));
    });
    body.appendChild(list);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Checkout. A click on "Check out" starts a new attempt with a fresh Idempotency-Key; "Retry" repeats the failed
  // attempt with the same key, so the cart service can answer a repeat of a checkout that did go through with the
  // stored order instead of charging again.
  // ------------------------------------------------------------------------------------------------------------
  function startCheckout() {
    if (state.checkoutBusy) return Promise.resolve();
    var items = state.cart && Array.isArray(state.cart.items) ? state.cart.items : [];
    if (!items.length) {
      showNotice('checkout-notice', 'info', 'Your cart is empty: add a product first.');
      return Promise.resolve();
    }
    // The attempt belongs to the shopper who started it: its answer and its retry mean nothing to another one.
    state.pendingCheckout = { key: 'sf-' + randomHex(16), tries: 0, userId: state.userId };
    return runCheckout();
  }

  function runCheckout() {
    if (state.checkoutBusy) return Promise.resolve();
    var attempt = state.pendingCheckout;
    if (!attempt || attempt.userId !== state.userId) {
      // Never a button that does nothing: say why there is nothing to retry and take the button away.
      state.pendingCheckout = null;
      showNotice('checkout-notice', 'info', 'There is no checkout to retry for this shopper: press "Check out".');
      return Promise.resolve();
    }
    state.checkoutBusy = true;
    // Switching shoppers mid-checkout would leave an answer with nobody to give it to.
    $('new-shopper').disabled = true;
    attempt.tries += 1;
    // The button the shopper pressed disappears with the old message; give the keyboard focus a place to return to.
    var active = document.activeElement;
    var hadFocus = active && (active.id === 'retry-checkout' || active.id === 'checkout');
    $('checkout').setAttribute('aria-disabled', 'true');
    showNotice('checkout-notice', 'info', attempt.tries > 1
      ? 'Retrying the checkout with the same Idempotency-Key…'
      : 'Checking out…');
    return request('POST', userPath('cart', '/checkout'), {
      headers: { 'Idempotency-Key': attempt.key },
      timeoutMs: CHECKOUT_TIMEOUT_MS
    }).then(function (result) {
      return handleCheckoutResult(result, attempt);
    }).then(function () {
      state.checkoutBusy = false;
      $('new-shopper').disabled = false;
      renderCart();
      if (hadFocus) ($('retry-checkout') || $('checkout')).focus();
    });
  }

  function handleCheckoutResult(result, attempt) {
    var version = paymentVersionOf(result);
    var replayed = result.headers && result.headers.get('Idempotent-Replayed') === 'true';
    // A replay is the cart answering from its store: payment did not serve it again, so it is not counted again.
    // The count is per browser, so it counts even if the shopper has changed since.
    if (version && !replayed) {
      countVersion(version, result.ok ? 'paid' : result.status === 402 ? 'declined' : 'failed');
    }
    // The previous shopper's order or retry must never be shown to the current one.
    if (attempt.userId !== state.userId) return Promise.resolve();

    if (result.ok) {
      state.pendingCheckout = null;
      showOrder(result.data, version, replayed);
      showNotice('checkout-notice', 'success', replayed
        ? 'Order ' + result.data.order_id + ' was already placed; this is the stored order (nothing charged twice).'
        : 'Thank you! Order ' + result.data.order_id + ' is paid.');
      return Promise.all([loadCart(), loadActivity()]);
    }

    // 409 naming another key: an earlier checkout of this cart is not settled yet (another tab, or an attempt whose
    // outcome payment could not tell). The retry settles THAT attempt, so it must carry that key.
    var inFlight = result.status === 409 && result.data && result.data.in_flight_idempotency_key;
    if (inFlight) {
      attempt.key = inFlight;
      showNotice('checkout-notice', 'error', 'An earlier checkout of this cart is not finished yet. "Retry checkout" ' +
        'finishes that one first, so you cannot pay twice.',
        [{ id: 'retry-checkout', label: 'Retry checkout', onClick: runCheckout }]);
      return loadCart();
    }
    // 409 with the key in the body: the same attempt is still running elsewhere (a double click, another tab), so a
    // retry with the same key is right. Any other 409 (empty cart, product no longer sold) ends the attempt.
    if (result.status === 409 && !(result.data && result.data.idempotency_key)) {
      state.pendingCheckout = null;
      showNotice('checkout-notice', 'info', describeFailure(result, 'checkout') + '.');
      return loadCart();
    }

    var servedBy = version ? ' Served by payment ' + version + '.' : '';
    var retryable = result.status === 402 || result.status === 409 || isRetryable(result);
    // Only the cart service can vouch for the cart: its answers carry the key. A timeout or a proxy's error means
    // nobody knows whether the order went through, and the message says so.
    var cartAnswered = !!(result.data && result.data.idempotency_key);
    var advice = result.status === 402
      ? ' Your cart is unchanged and nothing was charged.'
      : cartAnswered
        ? ' Your cart is unchanged. Retrying is safe: it reuses the same Idempotency-Key, so you cannot pay twice.'
        : ' Whether the order went through is unknown. Retrying is safe: it reuses the same Idempotency-Key, so ' +
          'if it did, you get that order back instead of paying twice.';
    showNotice('checkout-notice', 'error', describeFailure(result, 'checkout') + '.' + servedBy + advice,
      retryable ? [{ id: 'retry-checkout', label: 'Retry checkout', onClick: runCheckout }] : null);
    // Show the cart as the server has it now, so "unchanged" is something the shopper can see, not a promise.
    return Promise.all([loadCart(), loadActivity()]);
  }

  function showOrder(order, version, replayed) {
    var section = $('last-order');
    section.hidden = false;
    var badgeSlot = $('last-order-badge');
    clear(badgeSlot);
    badgeSlot.appendChild(versionBadge(version || (order.payment && order.payment.version)));
    var body = $('last-order-body');
    clear(body);
    var payment = order.payment || {};
    var facts = el('dl', { className: 'facts' }, [
      el('dt', { text: 'Order' }), el('dd', { 'data-testid': 'order-id' }, [el('code', { text: order.order_id })]),
      el('dt', { text: 'Status' }), el('dd', { text: (order.status || '') + (replayed ? ' (stored order)' : '') }),
      el('dt', { text: 'Total' }), el('dd', { text: money(order.total, order.currency) }),
      payment.payment_id ? el('dt', { text: 'Payment' }) : null,
      payment.payment_id ? el('dd', {}, [el('code', { text: payment.payment_id })]) : null
    ]);
    // Payment v2 adds a fraud check: showing it makes the difference between the versions visible.
    if (payment.fraud_check && typeof payment.fraud_check === 'object') {
      facts.appendChild(el('dt', { text: 'Fraud check' }));
      facts.appendChild(el('dd', { text: String(payment.fraud_check.level || '') +
        (payment.fraud_check.score !== undefined ? ' (score ' + payment.fraud_check.score + ')' : '') }));
    }
    // v1 answers with a one-line text receipt, v2 with an itemised receipt object: another visible difference.
    if (typeof payment.receipt === 'string') {
      facts.appendChild(el('dt', { text: 'Receipt' }));
      facts.appendChild(el('dd', { text: payment.receipt }));
    } else if (payment.receipt && typeof payment.receipt === 'object') {
      facts.appendChild(el('dt', { text: 'Receipt' }));
      facts.appendChild(el('dd', { text: 'Itemised' +
        (payment.receipt.authorization_code ? ', authorisation ' + payment.receipt.authorization_code : '') +
        (payment.receipt.format ? ' (' + payment.receipt.format + ')' : '') }));
    }
    body.appendChild(facts);
    var items = Array.isArray(order.items) ? order.items : [];
    if (items.length) {
      body.appendChild(el('ul', { className: 'order-items' }, items.map(function (item) {
        return el('li', {}, [(item.quantity || 1) + ' × ' + (item.name || item.product_id) + ' — ' +
          money(item.line_total, order.currency)]);
      })));
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Payment versions seen by this browser
  // ------------------------------------------------------------------------------------------------------------
  function loadVersions() {
    var fallback = { v1: 0, v2: 0, recent: [] };
    try {
      var parsed = JSON.parse(storageGet('localStorage', STORAGE_KEYS.versions) || 'null');
      if (parsed && typeof parsed === 'object') {
        return {
          v1: Number(parsed.v1) || 0,
          v2: Number(parsed.v2) || 0,
          recent: Array.isArray(parsed.recent) ? parsed.recent.slice(0, RECENT_VERSIONS_KEPT) : []
        };
      }
    } catch (e) {
      /* unreadable: start over */
    }
    return fallback;
  }

  function countVersion(version, outcome) {
    var counts = loadVersions();
    if (version === 'v1' || version === 'v2') counts[version] += 1;
    counts.recent.unshift({ version: version, outcome: outcome });
    counts.recent = counts.recent.slice(0, RECENT_VERSIONS_KEPT);
    storageSet('localStorage', STORAGE_KEYS.versions, JSON.stringify(counts));
    renderVersions();
  }

  function renderVersions() {
    var counts = loadVersions();
    var total = counts.v1 + counts.v2;
    $('count-v1').textContent = $('header-v1').textContent = String(counts.v1);
    $('count-v2').textContent = $('header-v2').textContent = String(counts.v2);
    $('share-v2').textContent = total ? Math.round((100 * counts.v2) / total) + '% of ' + total : '–';
    $('bar-v1').style.width = total ? (100 * counts.v1) / total + '%' : '0';
    $('bar-v2').style.width = total ? (100 * counts.v2) / total + '%' : '0';
    var recent = $('recent-versions');
    clear(recent);
    counts.recent.forEach(function (entry) {
      var version = typeof entry === 'string' ? entry : entry && entry.version;
      var outcome = entry && entry.outcome;
      var failed = outcome && outcome !== 'paid';
      var known = version === 'v1' || version === 'v2';
      recent.appendChild(el('li', {}, [el('span', {
        className: 'badge ' + (known ? 'badge-' + version : 'badge-unknown') + (failed ? ' badge-failed' : ''),
        title: 'payment ' + (known ? version : '?') + (failed ? ': ' + outcome : ': paid')
      }, [(known ? version : '?') + (failed ? ' · ' + outcome : '')])]));
    });
    if (!counts.recent.length) recent.appendChild(el('li', { className: 'empty', text: 'No checkouts yet.' }));
  }

  // ------------------------------------------------------------------------------------------------------------
  // Orders and notifications
  // ------------------------------------------------------------------------------------------------------------
  function loadActivity() {
    var user = state.userId;
    return Promise.all([
      getWithRetry(userPath('users', '/orders'), 'orders', 'activity-notice'),
      getWithRetry(userPath('users', '/notifications'), 'notifications', 'activity-notice')
    ]).then(function (results) {
      if (user !== state.userId) return;   // the shopper changed meanwhile: these are someone else's orders
      var problems = results.filter(function (r) { return !r.ok; });
      if (problems.length) {
        showNotice('activity-notice', 'error', problems.map(function (r, i) {
          return describeFailure(r, r === results[0] ? 'orders' : 'notifications');
        }).join('; ') + '.', [{ id: 'retry-activity', label: 'Try again', onClick: loadActivity }]);
      } else {
        showNotice('activity-notice', 'info', '');
      }
      if (results[0].ok) renderOrders(results[0].data.orders);
      if (results[1].ok) renderNotifications(results[1].data.notifications);
    });
  }

  function renderOrders(orders) {
    var list = $('order-list');
    clear(list);
    orders = Array.isArray(orders) ? orders : [];
    if (!orders.length) {
      list.appendChild(el('li', { className: 'empty', text: 'No orders yet.' }));
      return;
    }
    orders.slice(0, LIST_ENTRIES_SHOWN).forEach(function (order) {
      var version = order.payment && order.payment.version;
      list.appendChild(el('li', { className: 'entry' }, [
        el('div', { className: 'entry-main' }, [
          el('code', { text: order.order_id }),
          ' ',
          versionBadge(version)
        ]),
        el('div', { className: 'entry-meta', text: money(order.total, order.currency) + ' · ' +
          (order.status || '') + ' · ' + when(order.created_at) })
      ]));
    });
  }

  function renderNotifications(notifications) {
    var list = $('notification-list');
    clear(list);
    notifications = Array.isArray(notifications) ? notifications : [];
    if (!notifications.length) {
      list.appendChild(el('li', { className: 'empty', text: 'No notifications yet.' }));
      return;
    }
    notifications.slice(0, LIST_ENTRIES_SHOWN).forEach(function (note) {
      var type = String(note.type || 'notification');
      list.appendChild(el('li', { className: 'entry entry-' + type.replace(/[^a-z_]/gi, '') }, [
        el('div', { className: 'entry-main', text: note.message || type.replace(/_/g, ' ') }),
        el('div', { className: 'entry-meta', text: type.replace(/_/g, ' ') + ' · ' +
          when(note.created_at || note.timestamp) })
      ]));
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Start
  // ------------------------------------------------------------------------------------------------------------
  function switchShopper() {
    if (state.checkoutBusy) return Promise.resolve();   // the button is disabled then; this covers a stray call
    state.userId = newUserId();
    state.pendingCheckout = null;
    state.quantityNote = null;
    $('user-id').textContent = state.userId;
    $('last-order').hidden = true;
    showNotice('checkout-notice', 'info', '');
    showNotice('cart-notice', 'success', 'You are now shopper ' + state.userId + ', with an empty cart.');
    return Promise.all([loadCart(), loadActivity()]);
  }

  function start() {
    state.userId = loadUserId();
    $('user-id').textContent = state.userId;
    $('checkout').addEventListener('click', function () {
      if ($('checkout').getAttribute('aria-disabled') === 'true' && !state.checkoutBusy) {
        showNotice('checkout-notice', 'info', 'Your cart is empty: add a product first.');
        return;
      }
      startCheckout();
    });
    $('new-shopper').addEventListener('click', switchShopper);
    $('reload-catalog').addEventListener('click', loadCatalog);
    $('reload-activity').addEventListener('click', loadActivity);
    $('reset-versions').addEventListener('click', function () {
      storageSet('localStorage', STORAGE_KEYS.versions, JSON.stringify({ v1: 0, v2: 0, recent: [] }));
      renderVersions();
    });
    // Another tab of this browser counted a checkout: show the shared count at once.
    window.addEventListener('storage', function (event) {
      if (event.key === STORAGE_KEYS.versions || event.key === null) renderVersions();
    });
    renderCart();
    renderVersions();
    loadCatalog();
    loadCart();
    loadActivity();
  }

  // The last line of defence: whatever goes wrong shows up as a message, not as a blank page.
  function reportUnexpected(error) {
    var text = 'something went wrong in this page (' + (error && error.message ? error.message : error) +
      '). Reload the page to try again.';
    try {
      showNotice('catalog-notice', 'error', text);
    } catch (e) {
      /* the page itself is broken; nothing more we can do */
    }
  }
  window.addEventListener('unhandledrejection', function (event) {
    event.preventDefault();
    reportUnexpected(event.reason);
  });

  try {
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
    else start();
  } catch (error) {
    reportUnexpected(error);
  }
})();
