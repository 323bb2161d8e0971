/* 电子税务局 portal (taxgate issue 5): every flow of the operation guide on the JSON API
 * under /api/v1. Plain DOM, no framework; hash routing (#/…) so the gateway serves only
 * `/` and /assets/*. Strict CSP: no inline script or style, every element built here.
 */
'use strict';

(function () {
  // ------------------------------------------------------------------ small helpers

  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) return;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
        else if (k === 'dataset') Object.keys(v).forEach(function (d) { el.dataset[d] = v[d]; });
        else if (v === true) el.setAttribute(k, '');
        else el.setAttribute(k, String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, c) {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { append(el, x); }); return; }
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }

  var uid = 0;
  function nextId(prefix) { uid += 1; return (prefix || 'f') + '-' + uid; }

  var ROLE = { legal_rep: '法定代表人', finance_officer: '财务负责人', tax_officer: '办税人', agent: '税务代理人' };
  var SOURCE = { registry: '税务登记', self_registered: '企业用户注册', added: '法人/财务负责人添加' };
  var METHOD = { password: '密码', sms: '短信验证码' };
  var LOGIN_KIND = { password: '用户名登录', ca: 'CA登录', device: '税控设备登录' };

  function roles(list) { return (list || []).map(function (r) { return ROLE[r] || r; }).join('、'); }
  function sources(list) { return (list || []).map(function (s) { return SOURCE[s] || s; }).join('、'); }
  function isAdmin(list) { return (list || []).some(function (r) { return r === 'legal_rep' || r === 'finance_officer'; }); }

  function duration(seconds) {
    var s = Math.max(1, Math.ceil(seconds));
    if (s < 60) return s + '秒';
    var m = Math.ceil(s / 60);
    return m + '分钟';
  }

  // ------------------------------------------------------------------ state

  var S = {
    csrf: null,       // X-CSRF-Token of the live session
    session: null,    // GET /session answer
    login: null,      // stage 1: {ticket, enterprise, officers}
    officer: null,    // chosen officer row
    flash: null,      // {kind, text} shown once on the next page
    catalog: null,    // GET /modules (full tree), cached
  };

  function flash(kind, text) { S.flash = { kind: kind, text: text }; }

  // ------------------------------------------------------------------ API

  var MESSAGES = {
    INVALID_INPUT: '填写的内容有误，请检查',
    CAPTCHA_INVALID: '图形验证码错误或已失效，请重新输入',
    BAD_CREDENTIALS: '账号或密码错误',
    LOCKED: '密码错误次数过多，账号已被临时锁定',
    RATE_LIMITED: '操作过于频繁，请稍后再试',
    SMS_CODE_INVALID: '短信验证码错误或已失效',
    TICKET_INVALID: '操作已过期，请重新开始',
    METHOD_NOT_ALLOWED: '该办税人员不能使用此验证方式',
    NOT_BOUND: '未绑定企业',
    ALREADY_REGISTERED: '已注册',
    PASSWORD_MISMATCH: '密码与自然人注册时设置的密码不一致，可使用“忘记密码”重置',
    REALNAME_FAILED: '实名认证未通过',
    NOT_FOUND: '未找到',
    FORBIDDEN: '无权访问',
    UNAUTHENTICATED: '登录已失效，请重新登录',
    CSRF_INVALID: '页面已过期，请刷新后重试',
    PAYLOAD_TOO_LARGE: '提交的内容过大',
    UNAVAILABLE: '服务暂时不可用，请稍后再试',
    INTERNAL: '系统繁忙，请稍后再试',
    NETWORK: '网络连接失败，请检查网络后重试',
    CHALLENGE_INVALID: '证书登录请求已失效，请重新获取后签名',
    CERT_UNTRUSTED: '证书不是受信任的CA签发的',
    CERT_EXPIRED: '证书已过期或尚未生效',
    CERT_REVOKED: '证书已被吊销',
    CERT_NOT_FOR_LOGIN: '该证书不能用于签名登录',
    CERT_NO_ENTERPRISE: '证书中没有企业的统一社会信用代码或纳税人识别号',
    ENTERPRISE_UNKNOWN: '证书对应的企业未在电子税务局登记',
    SIGNATURE_INVALID: '证书签名验证失败',
  };

  // The field an error concerns when the API does not name one.
  var DEFAULT_FIELD = {
    CAPTCHA_INVALID: 'captcha_answer',
    BAD_CREDENTIALS: 'password',
    LOCKED: 'password',
    SMS_CODE_INVALID: 'sms_code',
    PASSWORD_MISMATCH: 'password',
    REALNAME_FAILED: 'realname_verification_id',
    METHOD_NOT_ALLOWED: 'password',
    RATE_LIMITED: 'sms_code',
    CHALLENGE_INVALID: 'challenge_id',
    CERT_UNTRUSTED: 'certificate',
    CERT_EXPIRED: 'certificate',
    CERT_REVOKED: 'certificate',
    CERT_NOT_FOR_LOGIN: 'certificate',
    CERT_NO_ENTERPRISE: 'certificate',
    ENTERPRISE_UNKNOWN: 'certificate',
    SIGNATURE_INVALID: 'signature',
  };

  function ApiError(e, status) {
    this.code = e.code || 'INTERNAL';
    this.message = e.message || MESSAGES[this.code] || '操作失败';
    this.field = e.field || null;
    this.retry_after = e.retry_after || null;
    this.status = status || 0;
  }

  function messageOf(err) {
    if (!(err instanceof ApiError)) return MESSAGES.INTERNAL;
    var m = err.message;
    if (err.code === 'INVALID_INPUT' && /^请求参数有误：/.test(m)) m = MESSAGES.INVALID_INPUT;
    if ((err.code === 'LOCKED' || err.code === 'RATE_LIMITED') && err.retry_after) {
      m = m.replace(/[，。]?(请稍后再试)?[。，]?$/, '') + '，请' + duration(err.retry_after) + '后再试';
    }
    return m;
  }

  function api(method, path, body) {
    var headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (S.csrf && method !== 'GET') headers['X-CSRF-Token'] = S.csrf;
    return fetch('/api/v1' + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    }).catch(function () {
      throw new ApiError({ code: 'NETWORK' });
    }).then(function (res) {
      if (res.status === 204) return null;
      return res.json().catch(function () { return null; }).then(function (data) {
        if (res.ok) return data;
        var e = data && data.error ? data.error : { code: res.status >= 500 ? 'UNAVAILABLE' : 'INTERNAL' };
        throw new ApiError(e, res.status);
      });
    });
  }

  // Calls made with a session: a lost session goes back to the login with a message.
  function sapi(method, path, body) {
    return api(method, path, body).catch(function (e) {
      if (e instanceof ApiError && e.code === 'UNAUTHENTICATED') expire();
      throw e;
    });
  }

  function expire() {
    S.session = null;
    S.csrf = null;
    flash('warn', '登录已失效，请重新登录');
    go('/login');
  }

  function loadSession() {
    return api('GET', '/session').then(function (s) {
      S.session = s;
      S.csrf = s.csrf_token;
      renderNav();
      return s;
    });
  }

  function catalog() {
    if (S.catalog) return Promise.resolve(S.catalog);
    return api('GET', '/modules').then(function (t) { S.catalog = t; return t; });
  }

  // ------------------------------------------------------------------ forms

  // A labelled input with its error line. opts: name, label, type, autocomplete,
  // inputmode, maxlength, placeholder, hint, required (default true), value, after;
  // type 'textarea' (with rows) for multi-line text.
  function field(opts) {
    var id = nextId(opts.name);
    var errId = id + '-err';
    var hintId = opts.hint ? id + '-hint' : null;
    var input;
    if (opts.type === 'select') {
      input = h('select', { id: id, name: opts.name });
      (opts.options || []).forEach(function (o) {
        input.appendChild(h('option', { value: o.value, text: o.text }));
      });
    } else if (opts.type === 'textarea') {
      input = h('textarea', { id: id, name: opts.name, rows: opts.rows || 4, placeholder: opts.placeholder, spellcheck: 'false' });
    } else {
      input = h('input', {
        id: id, name: opts.name, type: opts.type || 'text',
        autocomplete: opts.autocomplete || 'off', inputmode: opts.inputmode,
        maxlength: opts.maxlength, placeholder: opts.placeholder, value: opts.value,
        spellcheck: 'false',
      });
    }
    input.setAttribute('aria-describedby', [errId, hintId].filter(Boolean).join(' '));
    // An error is about the value it was shown for: editing the field clears it.
    input.addEventListener('input', function () {
      if (input.getAttribute('aria-invalid') !== 'true') return;
      input.removeAttribute('aria-invalid');
      var line = document.getElementById(errId);
      if (line) line.textContent = '';
    });
    if (opts.required !== false) { input.setAttribute('aria-required', 'true'); input.dataset.required = '1'; }
    input.dataset.label = opts.label;
    if (opts.check) input._check = opts.check;
    return h('div', { class: 'field' + (opts.wide ? ' wide' : '') },
      h('label', { for: id, text: opts.label }),
      h('div', { class: 'control' }, input, opts.after || null),
      opts.hint ? h('p', { class: 'hint', id: hintId, text: opts.hint }) : null,
      h('p', { class: 'err', id: errId, dataset: { for: opts.name } }));
  }

  function inputOf(form, name) { return form.querySelector('[name="' + name + '"]'); }
  function val(form, name) { var i = inputOf(form, name); return i ? i.value.trim() : ''; }
  function rawVal(form, name) { var i = inputOf(form, name); return i ? i.value : ''; }

  function clearErrors(form) {
    form.querySelectorAll('.err').forEach(function (e) { e.textContent = ''; });
    form.querySelectorAll('[aria-invalid]').forEach(function (e) { e.removeAttribute('aria-invalid'); });
    var fe = form.querySelector('.form-err');
    if (fe) { fe.textContent = ''; fe.hidden = true; }
  }

  function fieldError(form, name, text) {
    var input = inputOf(form, name);
    var line = form.querySelector('.err[data-for="' + name + '"]');
    if (!input || !line) return false;
    line.textContent = text;
    input.setAttribute('aria-invalid', 'true');
    return true;
  }

  function formError(form, text, extra) {
    var fe = form.querySelector('.form-err');
    if (!fe) {
      fe = h('div', { class: 'form-err', role: 'alert' });
      form.insertBefore(fe, form.firstChild);
    }
    fe.replaceChildren(text);
    if (extra) append(fe, extra);
    fe.hidden = false;
  }

  // Shows an API error next to the field it concerns (or above the form) and focuses it.
  function showError(form, err, aliases) {
    var text = messageOf(err);
    var name = err.field || DEFAULT_FIELD[err.code];
    if (name && aliases && aliases[name]) name = aliases[name];
    if (name && fieldError(form, name, text)) {
      var input = inputOf(form, name);
      if (input && input.focus) input.focus();
      return;
    }
    formError(form, text, hintFor(err));
    var fe = form.querySelector('.form-err');
    if (fe) fe.scrollIntoView({ block: 'nearest' });
  }

  function hintFor(err) {
    if (err.code === 'TICKET_INVALID') {
      var flow = /^#\/register/.test(location.hash) ? ['#/register', '重新注册'] : /^#\/forgot/.test(location.hash) ? ['#/forgot', '重新开始'] : ['#/login', '返回登录'];
      return [' ', h('a', { href: flow[0], text: flow[1] })];
    }
    if (err.code === 'ALREADY_REGISTERED') {
      return ['。该手机号码或身份证号已注册，可直接', h('a', { href: '#/login', text: '登录' }), '，或使用', h('a', { href: '#/forgot', text: '忘记密码' }), '找回密码。'];
    }
    return null;
  }

  // Client-side checks before calling the API: required fields and per-field rules.
  function validate(form) {
    clearErrors(form);
    var first = null;
    form.querySelectorAll('input, select, textarea').forEach(function (i) {
      if (!i.name || i.disabled || i.closest('[hidden]')) return;
      var v = i.type === 'password' ? i.value : i.value.trim();
      var msg = null;
      if (i.dataset.required && !v) msg = (i.tagName === 'SELECT' ? '请选择' : '请输入') + i.dataset.label;
      else if (v && i._check) msg = i._check(v, form);
      if (msg) {
        fieldError(form, i.name, msg);
        if (!first) first = i;
      }
    });
    if (first) first.focus();
    return !first;
  }

  var checks = {
    phone: function (v) { return /^1\d{10}$/.test(v) ? null : '请输入11位手机号码'; },
    sms: function (v) { return /^\d{6}$/.test(v) ? null : '请输入6位短信验证码'; },
    account: function (v) { return /^[0-9A-Za-z]{15,20}$/.test(v) ? null : '请输入正确的统一社会信用代码或纳税人识别号'; },
    uscc: function (v) { return /^[0-9A-Za-z]{18}$/.test(v) ? null : '统一社会信用代码应为18位'; },
    idNumber: function (v) { return /^\d{17}[\dXx]$/.test(v) ? null : '居民身份证号码应为18位'; },
    newPassword: function (v) { return v.length < 8 ? '密码至少8位' : v.length > 64 ? '密码不能超过64位' : null; },
    confirm: function (other) {
      return function (v, form) { return v === rawVal(form, other) ? null : '两次输入的密码不一致'; };
    },
  };

  function busy(button, on, label) {
    if (!button) return;
    if (on) { button.dataset.label = button.textContent; button.textContent = label || '请稍候…'; button.disabled = true; }
    else { button.textContent = button.dataset.label || button.textContent; button.disabled = false; }
  }

  // Wires a form's submit: validation, busy button, API error display.
  function onSubmit(form, run, aliases) {
    form.setAttribute('novalidate', '');
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (form.dataset.busy) return;
      if (!validate(form)) return;
      var btn = form.querySelector('button[type=submit]');
      form.dataset.busy = '1';
      busy(btn, true);
      Promise.resolve().then(run).catch(function (err) {
        if (err instanceof ApiError) showError(form, err, aliases);
        else { formError(form, MESSAGES.INTERNAL); if (window.console) console.error(err); }
      }).then(function () {
        delete form.dataset.busy;
        if (btn && btn.isConnected) busy(btn, false);
      });
    });
  }

  // ------------------------------------------------------------------ widgets

  // Image captcha: an input plus the image (a button: click or Enter refreshes).
  // opts.lazy: nothing is fetched until show() (a tab shown for the first time).
  function captcha(opts) {
    var img = h('img', { class: 'captcha-img', alt: '图形验证码（点击换一张）', width: 120, height: 45 });
    var btn = h('button', { type: 'button', class: 'captcha-btn', title: '看不清？换一张', 'aria-label': '换一张图形验证码' }, img);
    var c = {
      id: null,
      el: field({ name: 'captcha_answer', label: '验证码', maxlength: 8, autocomplete: 'off', after: btn, required: !(opts && opts.optional), hint: opts && opts.hint }),
      // data-loading while a new one is on its way (the answer typed meanwhile is cleared
      // when it arrives: it would be the old image's).
      refresh: function () {
        var input = c.el.querySelector('input');
        input.value = '';
        img.dataset.loading = '1';
        return api('GET', '/captcha').then(function (r) {
          c.id = r.captcha_id;
          img.src = r.image;
          img.dataset.captchaId = r.captcha_id;
          input.value = '';
        }).catch(function (e) {
          var line = c.el.querySelector('.err');
          line.textContent = messageOf(e);
        }).then(function () { delete img.dataset.loading; });
      },
    };
    // The first time it is shown (lazy captchas only: the others are fetched at once).
    c.show = function () { if (!c.shown) { c.shown = true; c.refresh(); } };
    btn.addEventListener('click', function () { c.refresh(); });
    if (!(opts && opts.lazy)) c.show();
    return c;
  }

  // "获取验证码" with the resend countdown. send() resolves to {resend_after}.
  function smsButton(send, beforeSend) {
    var b = h('button', { type: 'button', class: 'btn secondary sms-btn', text: '获取验证码' });
    var timer = null;
    function countdown(n) {
      clearInterval(timer);
      var left = Math.max(1, Math.ceil(n));
      b.disabled = true;
      b.textContent = '重新获取(' + left + 's)';
      b.dataset.countdown = String(left);
      timer = setInterval(function () {
        left -= 1;
        if (left <= 0 || !b.isConnected) {
          clearInterval(timer);
          b.disabled = false;
          b.textContent = '重新获取验证码';
          delete b.dataset.countdown;
          return;
        }
        b.textContent = '重新获取(' + left + 's)';
        b.dataset.countdown = String(left);
      }, 1000);
    }
    b.addEventListener('click', function () {
      if (beforeSend && !beforeSend()) return;
      b.disabled = true;
      b.textContent = '发送中…';
      Promise.resolve().then(send).then(function (r) {
        countdown((r && r.resend_after) || 60);
      }).catch(function (e) {
        b.disabled = false;
        b.textContent = '获取验证码';
        if (e instanceof ApiError && e.code === 'RATE_LIMITED' && e.retry_after && e.retry_after <= 120) countdown(e.retry_after);
        if (b.onerror) b.onerror(e);
      });
    });
    b.countdown = countdown;
    return b;
  }

  // 实名认证 (real-name verification): the QR payload to scan with 支付宝/微信; in
  // development (fixture provider, payload taxgate-dev://…) a button completes it.
  // identity() returns {name, id_number} or null when the fields are not valid yet.
  function realname(identity) {
    var box = h('div', { class: 'realname', role: 'group', 'aria-label': '实名认证' });
    var status = h('p', { class: 'rn-status', role: 'status', 'aria-live': 'polite', text: '尚未认证：请先填写姓名和身份证号，然后开始实名认证。' });
    var area = h('div', { class: 'rn-area' });
    var err = h('p', { class: 'err', dataset: { for: 'realname_verification_id' } });
    var hidden = h('input', { type: 'hidden', name: 'realname_verification_id', value: '' });
    var startBtn = h('button', { type: 'button', class: 'btn secondary', text: '开始实名认证' });
    var poll = null;
    var rn = { id: null, passed: false, el: null };

    function reset(text) {
      clearInterval(poll);
      rn.id = null; rn.passed = false; hidden.value = '';
      area.replaceChildren();
      startBtn.hidden = false;
      startBtn.textContent = '开始实名认证';
      box.classList.remove('passed');
      status.textContent = text || '尚未认证：请先填写姓名和身份证号，然后开始实名认证。';
    }

    function check(manual) {
      if (!rn.id) return Promise.resolve();
      return api('GET', '/realname/' + encodeURIComponent(rn.id)).then(function (r) {
        if (r.status === 'passed') {
          clearInterval(poll);
          rn.passed = true;
          hidden.value = rn.id;
          err.textContent = '';
          box.classList.add('passed');
          area.replaceChildren(h('p', { class: 'ok', text: '✔ 实名认证已通过' }));
          status.textContent = '实名认证已通过。';
        } else if (r.status === 'failed') {
          clearInterval(poll);
          reset('实名认证未通过：姓名与身份证号未能通过核验，请核对后重新认证。');
          startBtn.textContent = '重新认证';
        } else if (manual) {
          status.textContent = '尚未完成扫码认证，请在手机上完成后再查询。';
        }
      }).catch(function (e) { status.textContent = messageOf(e); });
    }

    startBtn.addEventListener('click', function () {
      var who = identity();
      if (!who) { status.textContent = '请先正确填写姓名和身份证号。'; return; }
      startBtn.disabled = true;
      api('POST', '/realname/start', who).then(function (r) {
        rn.id = r.verification_id;
        startBtn.hidden = true;
        var dev = /^taxgate-dev:/.test(r.qr_payload);
        area.replaceChildren(
          h('p', { text: '请使用支付宝或微信扫描下方二维码，进行办税人员实人认证。' }),
          h('figure', { class: 'qr' },
            qrImage(r.qr_payload),
            h('figcaption', {}, '二维码内容：', h('code', { class: 'qr-payload', text: r.qr_payload }))),
          h('div', { class: 'actions' },
            h('button', { type: 'button', class: 'btn secondary', text: '我已完成扫码，查询结果', onclick: function () { check(true); } }),
            dev ? h('button', { type: 'button', class: 'btn dev', text: '完成实名认证（开发模式）', onclick: function () { check(true); } }) : null,
            h('button', { type: 'button', class: 'btn link', text: '重新生成', onclick: function () { reset(); } })),
          dev ? h('p', { class: 'hint', text: '开发模式：实名认证由演示数据（config/demo-realname.yaml）判定，点击“完成实名认证（开发模式）”即可模拟扫码。' }) : null);
        status.textContent = '等待扫码认证…';
        if (!dev) poll = setInterval(function () { if (!box.isConnected) clearInterval(poll); else check(false); }, 3000);
      }).catch(function (e) {
        status.textContent = messageOf(e);
        if (e.field === 'name' || e.field === 'id_number') {
          var form = box.closest('form');
          if (form) fieldError(form, e.field, messageOf(e));
        }
      }).then(function () { startBtn.disabled = false; });
    });

    rn.el = h('div', { class: 'field wide' }, box);
    append(box, [status, area, h('div', { class: 'actions' }, startBtn), err, hidden]);
    rn.reset = reset;
    return rn;
  }

  // The QR code of a payload (qr.js draws it; a data: URL image, allowed by the CSP).
  function qrImage(payload) {
    var url = window.TaxgateQR ? window.TaxgateQR.dataUrl(payload, 4) : null;
    return url ? h('img', { class: 'qr-img', src: url, alt: '实名认证二维码', width: 148, height: 148 }) : null;
  }

  // A <dialog> confirmation; resolves true when confirmed.
  function confirmDialog(title, body, okText, danger) {
    return new Promise(function (resolve) {
      var ok = h('button', { type: 'button', class: 'btn' + (danger ? ' danger' : ''), text: okText || '确定' });
      var cancel = h('button', { type: 'button', class: 'btn secondary', text: '取消' });
      var titleId = nextId('dlg');
      var d = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
        h('h2', { id: titleId, text: title }),
        h('div', { class: 'dialog-body' }, body),
        h('div', { class: 'actions' }, ok, cancel));
      var done = false;
      function close(v) {
        if (done) return;
        done = true;
        if (d.open) d.close();
        d.remove();
        resolve(v);
      }
      ok.addEventListener('click', function () { close(true); });
      cancel.addEventListener('click', function () { close(false); });
      d.addEventListener('close', function () { close(false); });
      document.body.appendChild(d);
      d.showModal();
      cancel.focus();
    });
  }

  function toast(text) {
    var t = document.getElementById('toast');
    t.textContent = text;
    t.classList.add('show');
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.classList.remove('show'); }, 4000);
  }

  function steps(list, current) {
    return h('ol', { class: 'steps', 'aria-label': '步骤' }, list.map(function (s, i) {
      return h('li', { class: i === current ? 'cur' : i < current ? 'done' : '', 'aria-current': i === current ? 'step' : null, text: s });
    }));
  }

  function crumbs(list) {
    return h('nav', { class: 'crumbs', 'aria-label': '当前位置' }, h('ol', {}, list.map(function (c) {
      return h('li', {}, c[1] ? h('a', { href: c[1], text: c[0] }) : h('span', { 'aria-current': 'page', text: c[0] }));
    })));
  }

  // ------------------------------------------------------------------ page shell

  var main = null;

  function page(title, nodes, opts) {
    document.title = title + ' - 云南省电子税务局';
    document.getElementById('toast').classList.remove('show');
    var head = h('h1', { tabindex: '-1', text: title });
    var body = [];
    if (opts && opts.crumbs) body.push(crumbs(opts.crumbs));
    body.push(head);
    if (S.flash) {
      body.push(h('div', { class: 'alert ' + S.flash.kind, role: S.flash.kind === 'ok' ? 'status' : 'alert', text: S.flash.text }));
      S.flash = null;
    }
    main.className = opts && opts.wide ? 'wide' : '';
    var all = [];
    append({ appendChild: function (n) { all.push(n); } }, body.concat(nodes));
    main.replaceChildren.apply(main, all);
    head.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }

  function renderNav() {
    var nav = document.getElementById('topnav');
    if (S.session) {
      nav.replaceChildren(
        h('span', { class: 'who', text: S.session.enterprise.name + ' · ' + S.session.officer.name }),
        h('a', { href: '#/home', text: '首页' }),
        h('button', { type: 'button', class: 'btn link inverse', text: '退出', onclick: logout }));
    } else {
      nav.replaceChildren(h('a', { href: '#/login', text: '登录' }), h('a', { href: '#/register', text: '注册' }));
    }
  }

  function logout() {
    sapi('POST', '/logout').catch(function () { return null; }).then(function () {
      S.session = null; S.csrf = null;
      flash('ok', '您已安全退出');
      renderNav();
      go('/login');
    });
  }

  function go(path) {
    if (location.hash === '#' + path) route();
    else location.hash = '#' + path;
  }

  // ------------------------------------------------------------------ 登录 → 企业用户 → 用户名登录 / 证书登录

  function startOfficers(r) {
    S.login = { ticket: r.login_ticket, enterprise: r.enterprise, officers: r.officers, kind: r.login || 'password', at: Date.now() };
    S.officer = null;
    go('/login/officers');
  }

  // tab: 'user' (用户名登录) or 'cert' (证书登录, #/login/cert).
  function pageLogin(tab) {
    var cap = captcha({ lazy: true });
    var form = h('form', { class: 'card form', 'aria-labelledby': 'login-tab-user' },
      field({ name: 'account', label: '社会信用代码或识别号', maxlength: 20, autocomplete: 'username', placeholder: '统一社会信用代码或纳税人识别号', check: checks.account }),
      field({ name: 'password', label: '密码', type: 'password', autocomplete: 'current-password', maxlength: 64 }),
      cap.el,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn wide-btn', text: '登录' })),
      h('p', { class: 'links' }, h('a', { href: '#/forgot', text: '忘记密码' }), h('a', { href: '#/register', text: '没有账号？立即注册' })));
    onSubmit(form, function () {
      return api('POST', '/login/enterprise', {
        account: val(form, 'account').toUpperCase(), password: rawVal(form, 'password'),
        captcha_id: cap.id || '', captcha_answer: val(form, 'captcha_answer'),
      }).then(startOfficers, function (e) { cap.refresh(); throw e; });
    });
    var cert = certLogin();
    // Each tab fetches its captcha when first shown (a page shows one tab).
    var TABS = {
      user: { name: '用户名登录', panel: form, show: cap.show, hint: '使用社会信用代码或识别号和企业密码登录，然后选择办税人员并完成身份校验。' },
      cert: { name: '证书登录', panel: cert.form, show: cert.show, hint: '使用企业的CA证书（CA登录）或税控设备证书（税控设备登录）对登录挑战签名登录，然后选择办税人员并完成身份校验。' },
    };
    var keys = Object.keys(TABS);
    var hint = h('p', { class: 'hint' });
    var tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': '登录方式', onkeydown: function (ev) {
      var i = keys.indexOf(ev.target.dataset.tab);
      var j = { ArrowRight: i + 1, ArrowLeft: i - 1 + keys.length, Home: 0, End: keys.length - 1 }[ev.key];
      if (i < 0 || j === undefined) return;
      ev.preventDefault();
      select(keys[j % keys.length], true);
    } });
    keys.forEach(function (k) {
      var t = TABS[k];
      t.tab = h('button', { type: 'button', role: 'tab', id: 'login-tab-' + k, class: 'tab', 'aria-controls': 'login-panel-' + k, dataset: { tab: k }, text: t.name, onclick: function () { select(k, true); } });
      t.wrap = h('div', { role: 'tabpanel', id: 'login-panel-' + k, 'aria-labelledby': 'login-tab-' + k }, t.panel);
      tabs.appendChild(t.tab);
    });
    tabs.appendChild(h('span', { role: 'tab', class: 'tab off', 'aria-selected': 'false', 'aria-disabled': 'true', title: '演示环境未开放报验户登录', text: '报验户登录' }));
    function select(k, byUser) {
      keys.forEach(function (x) {
        var on = x === k;
        TABS[x].tab.className = 'tab' + (on ? ' cur' : '');
        TABS[x].tab.setAttribute('aria-selected', String(on));
        TABS[x].tab.tabIndex = on ? 0 : -1;
        TABS[x].wrap.hidden = !on;
      });
      hint.textContent = TABS[k].hint;
      TABS[k].show();
      var crumb = main.querySelector('.crumbs li:last-child span');
      if (crumb) crumb.textContent = TABS[k].name;
      if (byUser) {
        TABS[k].tab.focus();
        history.replaceState(null, '', k === 'cert' ? '#/login/cert' : '#/login');
      }
    }
    page('登录', [
      h('div', { class: 'login-wrap' },
        h('div', { class: 'login-side' },
          h('div', { class: 'tabs kind', role: 'presentation' }, h('span', { class: 'tab cur', text: '企业用户' })),
          hint),
        h('div', { class: 'login-main' }, tabs, keys.map(function (k) { return TABS[k].wrap; }))),
    ], { crumbs: [['首页', '#/'], ['登录'], ['企业用户'], ['用户名登录']] });
    select(TABS[tab] ? tab : 'user', false);
  }

  // 证书登录 (CA登录 / 税控设备登录): a one-time challenge from the gateway, paid with a
  // solved image captcha (as every password attempt is), signed with the key of the
  // enterprise's certificate; the answer is that of the password login. Returns
  // {form, show}: show() fetches the captcha when the tab is first shown.
  function certLogin() {
    var ch = { id: null, timer: null };
    // Spent by every challenge request whatever its outcome, so a new one follows each
    // request and each refused login (which needs a new challenge, so a new captcha).
    var cap = captcha({ lazy: true, optional: true, hint: '获取登录挑战前，请先输入图形验证码。' });
    var form = h('form', { class: 'card form', 'aria-labelledby': 'login-tab-cert' });
    var errId = nextId('challenge-err');
    var getBtn = h('button', { type: 'button', name: 'challenge_id', class: 'btn secondary', 'aria-describedby': errId, text: '获取登录挑战', onclick: fetchChallenge });
    var status = h('p', { class: 'rn-status', role: 'status', 'aria-live': 'polite', text: '请先输入图形验证码并获取登录挑战，再用证书对其签名。' });
    var box = h('div');
    var fileId = nextId('certfile');
    var fileNote = h('p', { class: 'hint', id: fileId + '-hint', text: '选择 .pem、.cer 或 .crt 证书文件（PEM 或 DER 格式），或将证书内容粘贴到下方。' });
    var file = h('input', { type: 'file', id: fileId, accept: '.pem,.cer,.crt,.der', 'aria-describedby': fileId + '-hint', onchange: readFile });

    function reset(text) {
      clearInterval(ch.timer);
      ch.id = null;
      box.replaceChildren();
      status.textContent = text;
      getBtn.textContent = '获取登录挑战';
    }

    // An error of the challenge request: a captcha's next to the captcha, others under
    // the button.
    function challengeError(e) {
      var name = e.field || DEFAULT_FIELD[e.code];
      if (name === 'captcha_answer' || name === 'captcha_id') {
        fieldError(form, 'captcha_answer', messageOf(e));
        inputOf(form, 'captcha_answer').focus();
      } else {
        fieldError(form, 'challenge_id', messageOf(e));
      }
    }

    function fetchChallenge() {
      var line = form.querySelector('.err[data-for=challenge_id]');
      line.textContent = '';
      getBtn.removeAttribute('aria-invalid');
      var capLine = form.querySelector('.err[data-for=captcha_answer]');
      capLine.textContent = '';
      inputOf(form, 'captcha_answer').removeAttribute('aria-invalid');
      if (!val(form, 'captcha_answer')) {
        fieldError(form, 'captcha_answer', '请输入图形验证码');
        inputOf(form, 'captcha_answer').focus();
        return;
      }
      getBtn.disabled = true;
      var paid = { captcha_id: cap.id || '', captcha_answer: val(form, 'captcha_answer') };
      api('POST', '/login/ca/challenge', paid).then(function (r) {
        cap.refresh();
        var until = Date.now() + r.expires_in * 1000;
        var left = h('span', { class: 'countdown' });
        var cmd = 'taxgate dev sign --key <统一社会信用代码>.key --challenge ' + shellQuote(r.challenge);
        // The development signer only where the gateway says it runs in development mode.
        var signing = r.dev_sign ? [
          h('p', { class: 'hint', text: '正式环境由本机证书助手（签名插件）自动签名。开发环境可用 taxgate demo 启动时列出的私钥（税控设备证书为 <统一社会信用代码>-device.key）在命令行签名，再将输出粘贴到“签名”：' }),
          h('div', { class: 'copyline' }, h('code', { class: 'sign-cmd', text: cmd }), copyButton('复制签名命令', cmd)),
        ] : [h('p', { class: 'hint', text: '请用本机证书助手（签名插件）以企业证书对登录挑战签名，再将签名粘贴到“签名”。' })];
        clearInterval(ch.timer);
        ch.id = r.challenge_id;
        inputOf(form, 'signature').value = '';  // a signature of an earlier challenge is useless
        box.replaceChildren.apply(box, [
          h('div', { class: 'copyline' }, h('code', { class: 'challenge-text', text: r.challenge }), copyButton('复制登录挑战', r.challenge)),
          h('p', { class: 'hint' }, '有效期剩余 ', left, ' 秒，仅可使用一次。'),
        ].concat(signing));
        status.textContent = '已获取登录挑战，请在' + duration(r.expires_in) + '内完成签名并登录。';
        getBtn.textContent = '重新获取登录挑战';
        function tick() {
          var s = Math.ceil((until - Date.now()) / 1000);
          if (!box.isConnected) clearInterval(ch.timer);
          else if (s <= 0) reset('登录挑战已过期，请重新获取并签名。');
          else left.textContent = String(s);
        }
        tick();
        ch.timer = setInterval(tick, 1000);
      }, function (e) { cap.refresh(); throw e; }).catch(challengeError).then(function () { getBtn.disabled = false; });
    }

    // A PEM (or base64) text file as it is; anything else (DER) as base64.
    function readFile() {
      var f = file.files && file.files[0];
      if (!f) return;
      var line = form.querySelector('.err[data-for=certificate]');
      if (f.size > 64 * 1024) { line.textContent = '证书文件过大'; return; }
      var reader = new FileReader();
      reader.onload = function () {
        var bytes = new Uint8Array(reader.result), text = null;
        try { text = new TextDecoder('utf-8', { fatal: true }).decode(bytes).trim(); } catch (e) { text = null; }
        var pem = text !== null && (/-----BEGIN /.test(text) || /^[A-Za-z0-9+/=\s]+$/.test(text));
        var input = inputOf(form, 'certificate');
        input.value = pem ? text : base64(bytes);
        input.removeAttribute('aria-invalid');
        line.textContent = '';
        fileNote.textContent = '已读取 ' + f.name + (pem ? '。' : '（DER 格式，已转换为 Base64）。');
      };
      reader.onerror = function () { line.textContent = '无法读取证书文件'; };
      reader.readAsArrayBuffer(f);
    }

    append(form, [
      h('fieldset', {}, h('legend', { text: '登录挑战' }),
        status, box,
        cap.el,
        h('div', { class: 'actions' }, getBtn),
        h('p', { class: 'err', id: errId, dataset: { for: 'challenge_id' } })),
      h('fieldset', {}, h('legend', { text: '证书' }),
        h('div', { class: 'field' }, h('label', { for: fileId, text: '证书文件' }), file, fileNote),
        field({ name: 'certificate', label: '证书', type: 'textarea', rows: 5, placeholder: '-----BEGIN CERTIFICATE-----' }),
        field({ name: 'chain', label: '证书链（可选）', type: 'textarea', rows: 3, required: false, hint: '中级CA证书，可粘贴多个PEM格式证书。' })),
      field({ name: 'signature', label: '签名', type: 'textarea', rows: 3, hint: '用证书私钥对登录挑战文本（UTF-8）的签名，Base64 编码。' }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn wide-btn', text: '登录' }))]);

    onSubmit(form, function () {
      if (!ch.id) { fieldError(form, 'challenge_id', '请先获取登录挑战'); getBtn.focus(); return; }
      var cert = val(form, 'certificate');
      var body = {
        challenge_id: ch.id,
        certificate: /-----BEGIN /.test(cert) ? cert : cert.replace(/\s+/g, ''),
        signature: val(form, 'signature').replace(/\s+/g, ''),
      };
      var chain = val(form, 'chain');
      if (chain) body.chain = chain.match(/-----BEGIN [^-]+-----[\s\S]*?-----END [^-]+-----/g) || chain.split(/\s+/);
      // The gateway takes the challenge out before checking anything of the certificate:
      // once the request was read, the challenge is spent.
      return api('POST', '/login/ca', body).then(startOfficers, function (e) {
        cap.refresh();
        if (e.code === 'CHALLENGE_INVALID') reset('登录挑战已失效，请重新获取并签名。');
        else if (['INVALID_INPUT', 'RATE_LIMITED', 'PAYLOAD_TOO_LARGE', 'NETWORK'].indexOf(e.code) < 0) reset('每个登录挑战只能使用一次，请重新获取并签名。');
        throw e;
      });
    });
    return { form: form, show: cap.show };
  }

  function shellQuote(s) { return "'" + s.replace(/'/g, "'\\''") + "'"; }

  function base64(bytes) {
    var bin = '';
    for (var i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }

  // "复制": the clipboard API, else the text stays selected for Ctrl+C.
  function copyButton(label, text) {
    var b = h('button', { type: 'button', class: 'btn small secondary', 'aria-label': label, text: '复制' });
    b.addEventListener('click', function () {
      var copied = function () { toast('已复制'); };
      var select = function () {
        var r = document.createRange();
        r.selectNodeContents(b.previousSibling);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(r);
        toast('请按 Ctrl+C 复制已选中的内容');
      };
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(copied, select);
      else select();
    });
    return b;
  }

  // ------------------------------------------------------------------ 办税人员选择

  function needTicket() {
    if (S.login && Date.now() - S.login.at < 5 * 60 * 1000) return true;
    flash('warn', S.login ? '登录已超时（5分钟），请重新登录' : '请先输入社会信用代码或识别号和密码登录');
    S.login = null;
    go('/login');
    return false;
  }

  function pageOfficers() {
    if (!needTicket()) return;
    var L = S.login;
    var rows = L.officers.map(function (o) {
      var pick = h('button', { type: 'button', class: 'btn small', text: '选择', 'aria-label': '选择 ' + o.name_masked, onclick: function () { S.officer = o; go('/login/verify'); } });
      return h('tr', { dataset: { officer: o.officer_id } },
        h('td', { text: o.name_masked }),
        h('td', { text: roles(o.roles) }),
        h('td', { text: o.phone_masked }),
        h('td', { text: sources(o.sources) }),
        h('td', { text: o.methods.map(function (m) { return METHOD[m]; }).join('、') }),
        h('td', {}, pick));
    });
    page('办税人员选择', [
      h('p', { class: 'lead' }, '企业：', h('strong', { class: 'ent-name', text: L.enterprise.name }), '（' + L.enterprise.uscc + '）',
        L.kind !== 'password' ? h('span', { class: 'tag login-kind', text: LOGIN_KIND[L.kind] || L.kind }) : null),
      h('p', { text: '请选择办税人员，系统将对其身份进行再次校验。' }),
      h('div', { class: 'table-wrap' }, h('table', { class: 'grid officers' },
        h('caption', { class: 'sr', text: '该企业关联的办税人员' }),
        h('thead', {}, h('tr', {}, ['姓名', '身份', '手机号码', '来源', '身份校验方式', '操作'].map(function (t) { return h('th', { scope: 'col', text: t }); }))),
        h('tbody', {}, rows))),
      rows.length ? null : h('p', { class: 'alert warn', text: '该企业暂无可登录的办税人员。' }),
      h('aside', { class: 'tip' },
        h('h2', { text: '温馨提示' }),
        h('p', { text: '“办税人员选择”列表来源于三个方面：一是在核心征管系统登记的法人、财务负责人及办税人；二是通过“企业用户注册”功能绑定到该企业的办税人；三是已完成实名采集，并由法人、财务负责人通过“我的信息-用户管理-授权信息-添加用户”功能添加的办税人。' }),
        h('p', { text: '仅在核心征管系统登记的人员，通过登记的手机获取短信验证码完成身份验证；通过上述两种渠道绑定的办税人员，既可以使用设置的密码，也可以使用手机验证码登录。' }),
        h('p', {}, '若您不在列表中，请', h('a', { href: '#/register/enterprise', text: '企业用户注册' }), '，或由法人、财务负责人添加。')),
      h('p', {}, h('a', { href: L.kind === 'password' ? '#/login' : '#/login/cert', text: '返回重新登录' })),
    ], { crumbs: [['首页', '#/'], ['登录', '#/login'], ['办税人员选择']], wide: true });
  }

  // ------------------------------------------------------------------ 身份校验

  function pageVerify() {
    if (!needTicket()) return;
    if (!S.officer) { go('/login/officers'); return; }
    var L = S.login, o = S.officer;
    var canPw = o.methods.indexOf('password') >= 0;
    var method = canPw ? 'password' : 'sms';

    var pwForm = h('form', { class: 'form', 'aria-label': '输入密码完成身份校验' },
      field({ name: 'password', label: '自然人用户登录密码', type: 'password', autocomplete: 'current-password', maxlength: 64 }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '确定' })));
    var smsBtn = smsButton(function () {
      return api('POST', '/login/officer/sms', { login_ticket: L.ticket, officer_id: o.officer_id }).then(function (r) {
        toast('验证码已发送至 ' + o.phone_masked);
        return r;
      });
    });
    var smsForm = h('form', { class: 'form', 'aria-label': '输入短信验证码完成身份校验' },
      h('p', {}, '验证码将发送至手机 ', h('strong', { text: o.phone_masked })),
      field({ name: 'sms_code', label: '短信验证码', inputmode: 'numeric', maxlength: 6, autocomplete: 'one-time-code', check: checks.sms, after: smsBtn }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '确定' })));
    smsBtn.onerror = function (e) { clearErrors(smsForm); showError(smsForm, e, { officer_id: 'sms_code' }); notBound(smsForm, e); };

    function done(r) {
      S.csrf = r.csrf_token;
      S.login = null; S.officer = null;
      flash('ok', '登录成功，欢迎您，' + r.officer.name);
      go('/home');
    }
    function notBound(form, e) {
      if (e.code === 'NOT_BOUND') {
        formError(form, '未绑定企业', '：该办税人员已与本企业解除绑定，不能登录。可通过“企业用户注册”重新绑定，或请法人、财务负责人“添加用户”。');
        form.querySelectorAll('.err').forEach(function (x) { x.textContent = ''; });
      }
    }
    onSubmit(pwForm, function () {
      return api('POST', '/login/officer', { login_ticket: L.ticket, officer_id: o.officer_id, method: 'password', password: rawVal(pwForm, 'password') })
        .then(done, function (e) { if (e.code === 'NOT_BOUND') { notBound(pwForm, e); return; } throw e; });
    });
    onSubmit(smsForm, function () {
      return api('POST', '/login/officer', { login_ticket: L.ticket, officer_id: o.officer_id, method: 'sms', sms_code: val(smsForm, 'sms_code') })
        .then(done, function (e) { if (e.code === 'NOT_BOUND') { notBound(smsForm, e); return; } throw e; });
    });

    var radios = h('div', { class: 'methods', role: 'radiogroup', 'aria-label': '身份校验方式' });
    [['password', '输入密码完成身份校验'], ['sms', '输入短信验证码完成身份校验']].forEach(function (m) {
      var id = nextId('method');
      var input = h('input', { type: 'radio', name: 'method', id: id, value: m[0], disabled: m[0] === 'password' && !canPw });
      if (m[0] === method) input.checked = true;
      input.addEventListener('change', function () { show(m[0]); });
      radios.appendChild(h('div', { class: 'radio' }, input, h('label', { for: id, text: m[1] })));
    });
    var note = canPw ? null : h('p', { class: 'hint', text: '该办税人员仅在核心征管系统登记，只能通过登记的手机获取短信验证码完成身份验证。完成“企业用户注册”或由法人、财务负责人“添加用户”后，也可使用密码登录。' });
    function show(m) {
      pwForm.hidden = m !== 'password';
      smsForm.hidden = m !== 'sms';
    }
    show(method);
    page('身份校验', [
      h('div', { class: 'card' },
        h('p', { class: 'lead' }, '企业：', h('strong', { text: L.enterprise.name })),
        h('p', {}, '办税人员：', h('strong', { class: 'officer-name', text: o.name_masked }), '（' + roles(o.roles) + '）'),
        radios, note, pwForm, smsForm),
      h('p', {}, h('a', { href: '#/login/officers', text: '重新选择办税人员' })),
    ], { crumbs: [['首页', '#/'], ['登录', '#/login'], ['办税人员选择', '#/login/officers'], ['身份校验']] });
  }

  // ------------------------------------------------------------------ 企业办税首页

  function withSession(render) {
    return loadSession().then(render, function (e) {
      if (e.code === 'UNAUTHENTICATED') {
        S.session = null; S.csrf = null; renderNav();
        if (!S.flash) flash('warn', '登录已失效，请重新登录');
        go('/login');
      } else {
        page('出错了', [h('p', { class: 'alert error', text: messageOf(e) })]);
      }
    });
  }

  // The link of a menu node: its own route, else a sub-path of the nearest routed
  // ancestor (the same module serves it), else none.
  function menuTree(nodes, inherited, s) {
    return h('ul', { class: 'menu-list' }, nodes.map(function (n) {
      var seg = n.id.split('.').pop();
      var href = n.allowed ? (n.path || (inherited ? inherited + '/' + seg : null)) : null;
      var label;
      if (n.id === 'wdxx.yhgl' && n.allowed && s.can_manage_users) {
        label = h('a', { href: '#/users', class: 'mod', dataset: { module: n.id }, text: n.name });
      } else if (href) {
        label = h('a', { href: href, class: 'mod', target: '_blank', rel: 'noopener', dataset: { module: n.id }, text: n.name });
      } else {
        label = h('span', { class: n.allowed ? 'mod nolink' : 'mod group', dataset: { module: n.id }, title: n.allowed && !n.children.length ? '演示环境未接入该功能' : null, text: n.name });
      }
      return h('li', {}, label, n.children.length ? menuTree(n.children, n.allowed ? href : null, s) : null);
    }));
  }

  function pageHome() {
    return withSession(function (s) {
      var sections = s.modules.map(function (top) {
        var seg = top.path || null;
        var head = top.allowed && top.path
          ? h('a', { href: top.path, target: '_blank', rel: 'noopener', class: 'mod', dataset: { module: top.id }, text: top.name })
          : h('span', { class: 'mod group', dataset: { module: top.id }, text: top.name });
        return h('section', { class: 'menu-sec', 'aria-label': top.name },
          h('h2', {}, head),
          top.children.length ? menuTree(top.children, top.allowed ? seg : null, s) : h('p', { class: 'hint', text: '点击进入' }));
      });
      page('企业办税', [
        h('div', { class: 'ent-banner' },
          h('div', {},
            h('p', { class: 'ent-name', text: s.enterprise.name }),
            h('p', { class: 'muted', text: '社会信用代码：' + s.enterprise.uscc })),
          h('div', {},
            h('p', {}, '办税人员：', h('strong', { class: 'officer-name', text: s.officer.name })),
            h('p', { class: 'muted', text: '身份：' + roles(s.officer.roles) }))),
        s.can_manage_users ? h('p', { class: 'quick' }, h('a', { class: 'btn secondary', href: '#/users', text: '我的信息 › 用户管理 › 授权信息' })) : null,
        h('nav', { class: 'menu', 'aria-label': '功能菜单', id: 'menu' }, sections.length ? sections : h('p', { class: 'alert warn', text: '您暂无任何功能的使用权限，请联系法人或财务负责人授权。' })),
        h('p', { class: 'hint', text: '功能模块在新窗口打开。仅显示您被授权使用的功能。' }),
      ], { wide: true, crumbs: [['首页']] });
    });
  }

  // ------------------------------------------------------------------ 我的信息 → 用户管理 → 授权信息

  var USERS_CRUMBS = [['首页', '#/home'], ['我的信息'], ['用户管理'], ['授权信息']];

  function moduleNames(tree) {
    var names = {};
    (function walk(ns) { ns.forEach(function (n) { names[n.id] = n.name; walk(n.children); }); })(tree);
    return names;
  }

  function forbiddenPage(title, e) {
    page(title, [h('p', { class: 'alert error', role: 'alert', text: messageOf(e) }), h('p', {}, h('a', { href: '#/home', text: '返回首页' }))], { crumbs: USERS_CRUMBS });
  }

  function pageUsers() {
    return withSession(function () {
      return Promise.all([sapi('GET', '/enterprise/users'), catalog()]).then(function (r) {
        var users = r[0], names = moduleNames(r[1]);
        var rows = users.map(function (u) {
          var admin = isAdmin(u.roles);
          var grants = u.grants.map(function (g) { return names[g] || g; }).join('、') || '无';
          var ops = admin
            ? h('span', { class: 'muted', text: '由税务登记确定，不可调整' })
            : h('span', { class: 'ops' },
              h('a', { class: 'btn small', href: '#/users/grant/' + encodeURIComponent(u.person_id), 'aria-label': '授权 ' + u.name, text: '授权' }),
              h('button', { type: 'button', class: 'btn small danger', 'aria-label': '回收 ' + u.name + ' 的全部权限', text: '回收', onclick: function () { revokeAll(u); } }));
          return h('tr', { dataset: { person: u.person_id } },
            h('td', { class: 'user-name', text: u.name }),
            h('td', { text: roles(u.roles) }),
            h('td', { text: sources(u.sources) }),
            h('td', { class: 'grants' }, grants, u.customized ? null : h('span', { class: 'tag', text: admin ? '全部' : '默认' })),
            h('td', {}, ops));
        });
        page('授权信息', [
          h('p', { class: 'toolbar' }, h('a', { class: 'btn', href: '#/users/add', text: '添加用户' })),
          h('div', { class: 'table-wrap' }, h('table', { class: 'grid users' },
            h('caption', { class: 'sr', text: '本企业的办税人员及其权限' }),
            h('thead', {}, h('tr', {}, ['姓名', '身份', '来源', '已授权功能', '操作'].map(function (t) { return h('th', { scope: 'col', text: t }); }))),
            h('tbody', {}, rows))),
          h('p', { class: 'hint', text: '新用户注册后默认拥有“我要办税”功能模块下所有权限，法人或财务负责人可以根据工作需要对办税人员进行授权。取消所有权限后，该用户会自动解绑，解绑后的用户登录会提示“未绑定企业”。' }),
        ], { crumbs: USERS_CRUMBS, wide: true });
      }, function (e) { forbiddenPage('授权信息', e); });
    });
  }

  function revokeAll(u) {
    var body = h('div', {},
      h('p', {}, '确定回收 ', h('strong', { text: u.name }), ' 的全部权限吗？'),
      h('p', { class: 'alert warn', text: '取消所有权限后，该用户会自动解绑（不再是本企业的办税人员）；解绑后该用户登录会提示“未绑定企业”。' }));
    return confirmDialog('回收权限', body, '确定回收', true).then(function (yes) {
      if (!yes) return;
      return sapi('PUT', '/enterprise/users/' + encodeURIComponent(u.person_id) + '/grants', { modules: [] }).then(function (r) {
        flash('ok', r.bound ? '权限已回收' : '已回收 ' + u.name + ' 的全部权限，该用户已自动解绑');
        go('/users');
      }, function (e) { flash('error', messageOf(e)); go('/users'); });
    });
  }

  function pageGrant(personId) {
    return withSession(function () {
      return Promise.all([sapi('GET', '/enterprise/users'), catalog()]).then(function (r) {
        var u = r[0].filter(function (x) { return x.person_id === personId; })[0];
        if (!u) { flash('warn', '未找到该用户，可能已解绑'); go('/users'); return; }
        var tree = r[1];
        var granted = {};
        u.grants.forEach(function (g) { granted[g] = true; });
        var boxes = {};   // id → {input, node, parent}

        function build(nodes, parent, on) {
          return h('ul', { class: 'tree' }, nodes.map(function (n) {
            var id = nextId('m');
            var checked = on || !!granted[n.id];
            var input = h('input', { type: 'checkbox', id: id, value: n.id });
            input.checked = checked;
            boxes[n.id] = { input: input, node: n, parent: parent };
            input.addEventListener('change', function () {
              setDown(n, input.checked);
              updateUp(parent);
            });
            return h('li', {}, h('span', { class: 'check' }, input, h('label', { for: id, text: n.name })),
              n.children.length ? build(n.children, n.id, checked) : null);
          }));
        }
        function setDown(n, on) {
          n.children.forEach(function (c) { var b = boxes[c.id]; b.input.checked = on; b.input.indeterminate = false; setDown(c, on); });
        }
        function updateUp(pid) {
          if (!pid) return;
          var b = boxes[pid];
          var kids = b.node.children.map(function (c) { return boxes[c.id].input; });
          var all = kids.every(function (k) { return k.checked; });
          var some = kids.some(function (k) { return k.checked || k.indeterminate; });
          b.input.checked = all;
          b.input.indeterminate = !all && some;
          updateUp(b.parent);
        }
        function cover(nodes, out) {
          nodes.forEach(function (n) {
            if (boxes[n.id].input.checked) out.push(n.id);
            else cover(n.children, out);
          });
          return out;
        }
        var treeEl = build(tree, null, false);
        // Initial indeterminate states.
        (function init(nodes) { nodes.forEach(function (n) { init(n.children); if (n.children.length) updateUp(n.id); }); })(tree);
        // updateUp(n.id) recomputes n from its children; a granted parent stays checked.

        var form = h('form', { class: 'form grant-form', 'aria-label': '授权 ' + u.name },
          h('fieldset', { class: 'modules' }, h('legend', { text: '功能模块（勾选即授权，勾选上级包含全部下级）' }), treeEl),
          h('p', { class: 'err', dataset: { for: 'modules' } }),
          h('div', { class: 'actions' },
            h('button', { type: 'submit', class: 'btn', text: '确定' }),
            h('button', { type: 'button', class: 'btn secondary', text: '全部取消勾选', onclick: function () { Object.keys(boxes).forEach(function (k) { boxes[k].input.checked = false; boxes[k].input.indeterminate = false; }); } }),
            h('a', { class: 'btn link', href: '#/users', text: '返回' })));
        onSubmit(form, function () {
          var modules = cover(tree, []);
          var ask = modules.length ? Promise.resolve(true) : confirmDialog('回收全部权限',
            h('p', { class: 'alert warn', text: '您取消了 ' + u.name + ' 的所有权限。取消所有权限后，该用户会自动解绑；解绑后该用户登录会提示“未绑定企业”。确定吗？' }), '确定回收', true);
          return ask.then(function (yes) {
            if (!yes) return;
            return sapi('PUT', '/enterprise/users/' + encodeURIComponent(u.person_id) + '/grants', { modules: modules }).then(function (res) {
              flash('ok', res.bound ? '授权成功：' + u.name + ' 的权限已更新，下次操作即生效' : '已回收 ' + u.name + ' 的全部权限，该用户已自动解绑');
              go('/users');
            });
          });
        });
        page('授权', [
          h('p', { class: 'lead' }, '人员：', h('strong', { text: u.name }), '（' + roles(u.roles) + '，来源：' + sources(u.sources) + '）'),
          form,
        ], { crumbs: USERS_CRUMBS.slice(0, 3).concat([['授权信息', '#/users'], ['授权']]) });
      }, function (e) { forbiddenPage('授权', e); });
    });
  }

  function pageAddUser() {
    return withSession(function () {
      var results = h('div', { class: 'results', 'aria-live': 'polite' });
      var search = h('form', { class: 'form inline', role: 'search', 'aria-label': '查询自然人' },
        field({ name: 'q', label: '身份证号或手机号', maxlength: 24, hint: '只能添加已完成实名采集的自然人（已完成自然人注册或企业用户注册）。' }),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '查询' })));
      onSubmit(search, function () {
        return sapi('GET', '/enterprise/candidates?q=' + encodeURIComponent(val(search, 'q').toUpperCase())).then(function (list) {
          if (!list.length) {
            results.replaceChildren(h('p', { class: 'alert warn', text: '未找到已完成实名采集的自然人，请核对身份证号或手机号，或请其先完成自然人注册。' }));
            return;
          }
          results.replaceChildren(h('table', { class: 'grid' },
            h('thead', {}, h('tr', {}, ['姓名', '实名状态', '操作'].map(function (t) { return h('th', { scope: 'col', text: t }); }))),
            h('tbody', {}, list.map(function (c) {
              return h('tr', {},
                h('td', { text: c.name_masked }),
                h('td', { text: c.realname_verified ? '已实名' : '未实名' }),
                h('td', {}, h('button', { type: 'button', class: 'btn small', text: '创建用户', 'aria-label': '创建用户 ' + c.name_masked, onclick: function () { create(c); } })));
            }))));
        });
      });

      function create(c) {
        var form = h('form', { class: 'form card', 'aria-label': '设置办税人密码' },
          h('h2', { text: '设置该办税人密码' }),
          h('p', {}, '人员：', h('strong', { text: c.name_masked })),
          field({ name: 'password', label: '密码', type: 'password', autocomplete: 'new-password', maxlength: 64, required: false, check: checks.newPassword, hint: '“企业用户登录入口”中用户名登录时，自然人可通过该密码进行办税人员身份验证。若该自然人已设置过密码，则沿用其原密码。' }),
          field({ name: 'password2', label: '确认密码', type: 'password', autocomplete: 'new-password', maxlength: 64, required: false, check: checks.confirm('password') }),
          h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '确认' }), h('button', { type: 'button', class: 'btn secondary', text: '取消', onclick: function () { form.remove(); } })));
        onSubmit(form, function () {
          var body = { person_id: c.person_id };
          if (rawVal(form, 'password')) body.password = rawVal(form, 'password');
          return sapi('POST', '/enterprise/users', body).then(function (r) {
            flash('ok', '创建成功：' + c.name_masked + ' 已添加为本企业办税人员，默认拥有“我要办税”全部权限' +
              (r.password_set ? '，已设置其登录密码' : (body.password ? '（该自然人已有密码，沿用其原密码）' : '')));
            go('/users');
          });
        }, { person_id: 'password' });
        results.replaceChildren(form);
        form.querySelector('input').focus();
      }

      page('添加用户', [search, results], { crumbs: USERS_CRUMBS.slice(0, 3).concat([['授权信息', '#/users'], ['添加用户']]) });
    });
  }

  // ------------------------------------------------------------------ 注册

  function pageRegister() {
    page('账户注册', [
      h('div', { class: 'choices' },
        h('a', { class: 'choice', href: '#/register/person' }, h('strong', { text: '自然人注册' }), h('span', { text: '个人办税：手机验证、填写信息、实名认证后登记。' })),
        h('a', { class: 'choice', href: '#/register/enterprise' }, h('strong', { text: '企业用户注册' }), h('span', { text: '办税人（自然人）绑定企业：经法人或财务负责人短信认证后完成绑定。' }))),
      h('p', { class: 'hint', text: '使用“企业用户注册”时，企业需在核心征管系统完成登记。' }),
    ], { crumbs: [['首页', '#/'], ['注册'], ['账户注册']] });
  }

  // Phone + captcha + SMS code, name, ID number, password, real-name: the common part.
  function personFields(purpose, opts) {
    var cap = captcha({ optional: true, hint: '获取短信验证码前，请先输入图形验证码。' });
    var form = null;
    var sms = smsButton(function () {
      return api('POST', '/register/sms', { phone: val(form, 'phone'), captcha_id: cap.id || '', captcha_answer: val(form, 'captcha_answer') })
        .then(function (r) { cap.refresh(); toast('短信验证码已发送'); return r; }, function (e) { cap.refresh(); throw e; });
    }, function () {
      clearErrors(form);
      var bad = checks.phone(val(form, 'phone'));
      if (bad) { fieldError(form, 'phone', bad); inputOf(form, 'phone').focus(); return false; }
      if (!val(form, 'captcha_answer')) { fieldError(form, 'captcha_answer', '请输入图形验证码'); inputOf(form, 'captcha_answer').focus(); return false; }
      return true;
    });
    sms.onerror = function (e) { showError(form, e); };
    var rn = realname(function () {
      var name = val(form, 'name'), id = val(form, 'id_number').toUpperCase();
      clearErrors(form);
      var bad = false;
      if (!name) { fieldError(form, 'name', '请输入姓名'); bad = true; }
      var idBad = checks.idNumber(id);
      if (idBad) { fieldError(form, 'id_number', idBad); bad = true; }
      return bad ? null : { name: name, id_number: id };
    });
    var pwHint = purpose === 'enterprise'
      ? '若已操作过自然人注册，该密码需与自然人注册时设置的密码保持一致（可使用“忘记密码”功能重置）。用户名登录时，可通过该密码进行办税人员身份验证。'
      : '8–64位，请勿使用常见密码。';
    var sections = [
      h('fieldset', {}, h('legend', { text: '手机验证' }),
        field({ name: 'phone', label: '手机号码', inputmode: 'numeric', maxlength: 11, autocomplete: 'tel', check: checks.phone }),
        cap.el,
        field({ name: 'sms_code', label: '短信验证码', inputmode: 'numeric', maxlength: 6, autocomplete: 'one-time-code', check: checks.sms, after: sms })),
      h('fieldset', {}, h('legend', { text: '基本信息' }),
        field({ name: 'name', label: '姓名', maxlength: 32, autocomplete: 'name' }),
        field({ name: 'id_number', label: '居民身份证号码', maxlength: 18, check: checks.idNumber }),
        field({ name: 'password', label: '设置密码', type: 'password', autocomplete: 'new-password', maxlength: 64, check: purpose === 'enterprise' ? null : checks.newPassword, hint: pwHint }),
        field({ name: 'password2', label: '确认密码', type: 'password', autocomplete: 'new-password', maxlength: 64, check: checks.confirm('password') })),
      h('fieldset', {}, h('legend', { text: '实名认证' }), rn.el),
    ];
    function bind(f) {
      form = f;
      ['name', 'id_number'].forEach(function (n) {
        inputOf(f, n).addEventListener('input', function () { if (rn.id) rn.reset('姓名或身份证号已修改，请重新进行实名认证。'); });
      });
    }
    function body() {
      return {
        phone: val(form, 'phone'), sms_code: val(form, 'sms_code'), name: val(form, 'name'),
        id_number: val(form, 'id_number').toUpperCase(), password: rawVal(form, 'password'),
        realname_verification_id: rn.id && rn.passed ? rn.id : '',
      };
    }
    function requireRealname() {
      if (rn.passed) return true;
      fieldError(form, 'realname_verification_id', '请先完成实名认证');
      return false;
    }
    return { sections: sections, bind: bind, body: body, rn: rn, requireRealname: requireRealname };
  }

  function pageRegisterPerson() {
    var p = personFields('person');
    var authSel = field({ name: 'tax_authority', label: '所属税务机关', type: 'select', options: [{ value: '', text: '请选择' }] });
    var form = h('form', { class: 'form card' },
      p.sections,
      h('fieldset', {}, h('legend', { text: '登记' }), authSel),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '登记' })));
    p.bind(form);
    api('GET', '/tax-authorities').then(function (list) {
      var sel = inputOf(form, 'tax_authority');
      list.forEach(function (t) { sel.appendChild(h('option', { value: t.code, text: t.name })); });
    }).catch(function (e) { fieldError(form, 'tax_authority', messageOf(e)); });
    onSubmit(form, function () {
      if (!p.requireRealname()) return;
      var b = p.body();
      b.tax_authority = val(form, 'tax_authority');
      return api('POST', '/register/person', b).then(function () {
        page('注册成功', [
          h('div', { class: 'alert ok', role: 'status', text: '自然人注册成功。' }),
          h('p', { text: '您可以通过“企业用户注册”绑定企业，或由企业的法人、财务负责人“添加用户”后，以该密码完成办税人员身份校验。' }),
          h('p', { class: 'actions' }, h('a', { class: 'btn', href: '#/login', text: '去登录' }), h('a', { class: 'btn secondary', href: '#/register/enterprise', text: '企业用户注册' })),
        ]);
      });
    });
    page('自然人注册', [form], { crumbs: [['首页', '#/'], ['注册', '#/register'], ['自然人注册']] });
  }

  function pageRegisterEnterprise() {
    var p = personFields('enterprise');
    var form = h('form', { class: 'form card' }, p.sections,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '下一步' })));
    p.bind(form);
    onSubmit(form, function () {
      if (!p.requireRealname()) return;
      return api('POST', '/register/enterprise-user/start', p.body()).then(function (r) {
        bindStep(r.registration_ticket);
      });
    });
    var crumb = [['首页', '#/'], ['注册', '#/register'], ['企业用户注册']];
    var STEPS = ['填写信息并实名认证', '选择企业及认证人', '完成'];
    page('企业用户注册', [steps(STEPS, 0), form], { crumbs: crumb });

    function bindStep(ticket) {
      var found = h('div', { class: 'found' });
      var search = h('form', { class: 'form inline', role: 'search', 'aria-label': '搜索待绑定企业' },
        field({ name: 'uscc', label: '统一社会信用代码', maxlength: 18, check: checks.uscc, hint: '输入待绑定企业的统一社会信用代码进行搜索。' }),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '搜索' })));
      onSubmit(search, function () {
        var uscc = val(search, 'uscc').toUpperCase();
        return api('GET', '/register/enterprise-user/authorizers?uscc=' + encodeURIComponent(uscc) + '&ticket=' + encodeURIComponent(ticket)).then(function (r) {
          found.replaceChildren(confirmForm(ticket, uscc, r));
        }, function (e) {
          if (e.code === 'NOT_FOUND') e.message = '未找到该企业：企业需在核心征管系统完成登记';
          throw e;
        });
      }, { ticket: 'uscc' });
      page('企业用户注册', [steps(STEPS, 1), search, found], { crumbs: crumb });
    }

    function confirmForm(ticket, uscc, r) {
      var f = h('form', { class: 'form card', 'aria-label': '企业认证人员' });
      var group = h('div', { class: 'radios', role: 'radiogroup', 'aria-label': '企业认证人员（法人或财务负责人）' });
      r.authorizers.forEach(function (a, i) {
        var id = nextId('auth');
        var input = h('input', { type: 'radio', name: 'authorizer_id', id: id, value: a.authorizer_id });
        if (i === 0) input.checked = true;
        group.appendChild(h('div', { class: 'radio' }, input, h('label', { for: id, text: (ROLE[a.role] || a.role) + '：' + a.name_masked + '，手机 ' + a.phone_masked })));
      });
      function chosen() { var c = f.querySelector('input[name=authorizer_id]:checked'); return c ? c.value : ''; }
      var sms = smsButton(function () {
        return api('POST', '/register/enterprise-user/authorizer-sms', { registration_ticket: ticket, uscc: uscc, authorizer_id: chosen() })
          .then(function (x) { toast('验证码已发送至认证人手机'); return x; });
      });
      sms.onerror = function (e) { clearErrors(f); showError(f, e, { authorizer_id: 'sms_code' }); };
      append(f, [
        h('p', { class: 'lead' }, '企业：', h('strong', { class: 'ent-name', text: r.enterprise.name })),
        h('fieldset', {}, h('legend', { text: '选择企业认证人员' }), group),
        h('p', { class: 'hint', text: '短信验证码将发送至认证人在税务机关登记的手机，请认证人告知您验证码以完成企业授权。' }),
        field({ name: 'sms_code', label: '认证人短信验证码', inputmode: 'numeric', maxlength: 6, check: checks.sms, after: sms }),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '确认绑定' }))]);
      onSubmit(f, function () {
        return api('POST', '/register/enterprise-user/confirm', { registration_ticket: ticket, uscc: uscc, authorizer_id: chosen(), sms_code: val(f, 'sms_code') }).then(function (res) {
          page('企业用户注册', [steps(STEPS, 2),
            h('div', { class: 'alert ok', role: 'status', text: '注册成功！您已绑定企业 ' + res.enterprise.name + '。' }),
            h('p', { text: '新用户默认拥有“我要办税”功能模块下所有权限。登录时在“办税人员选择”中选择您本人，可使用密码或手机验证码完成身份校验。' }),
            h('p', { class: 'actions' }, h('a', { class: 'btn', href: '#/login', text: '去登录' }))], { crumbs: crumb });
        });
      }, { authorizer_id: 'sms_code', uscc: 'sms_code', registration_ticket: 'sms_code' });
      return f;
    }
  }

  // ------------------------------------------------------------------ 忘记密码

  function pageForgot() {
    page('忘记密码', [
      h('div', { class: 'choices' },
        h('a', { class: 'choice', href: '#/forgot/person' }, h('strong', { text: '自然人' }), h('span', { text: '通过已注册的手机号码、短信验证码和实名认证重置个人密码。' })),
        h('a', { class: 'choice', href: '#/forgot/enterprise' }, h('strong', { text: '企业' }), h('span', { text: '通过法人或财务负责人的短信验证码和实名认证重置企业登录密码。' }))),
    ], { crumbs: [['首页', '#/'], ['登录', '#/login'], ['忘记密码']] });
  }

  function resetStep(kind, ticket, STEPS, crumb) {
    var f = h('form', { class: 'form card', 'aria-label': '重新设置密码' },
      field({ name: 'new_password', label: '新密码', type: 'password', autocomplete: 'new-password', maxlength: 64, check: checks.newPassword, hint: '8–64位，请勿使用常见密码。' }),
      field({ name: 'new_password2', label: '确认新密码', type: 'password', autocomplete: 'new-password', maxlength: 64, check: checks.confirm('new_password') }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '提交' })));
    onSubmit(f, function () {
      return api('POST', '/recovery/' + kind + '/reset', { recovery_ticket: ticket, new_password: rawVal(f, 'new_password') }).then(function () {
        page('忘记密码', [steps(STEPS, STEPS.length - 1),
          h('div', { class: 'alert ok', role: 'status', text: kind === 'enterprise' ? '企业密码已重置，请使用新密码登录。' : '密码已重置，请使用新密码登录。' }),
          h('p', { class: 'actions' }, h('a', { class: 'btn', href: '#/login', text: '去登录' }))], { crumbs: crumb });
      });
    }, { new_password: 'new_password', password: 'new_password' });
    page('忘记密码', [steps(STEPS, STEPS.length - 2), f], { crumbs: crumb });
  }

  // SMS code + name + ID number + real-name, then /verify.
  function verifyForm(kind, ticket, extra, onDone) {
    var f = h('form', { class: 'form card' });
    var rn = realname(function () {
      var name = val(f, 'name'), id = val(f, 'id_number').toUpperCase();
      clearErrors(f);
      var bad = false;
      if (!name) { fieldError(f, 'name', '请输入姓名'); bad = true; }
      var idBad = checks.idNumber(id);
      if (idBad) { fieldError(f, 'id_number', idBad); bad = true; }
      return bad ? null : { name: name, id_number: id };
    });
    append(f, [extra,
      field({ name: 'sms_code', label: '短信验证码', inputmode: 'numeric', maxlength: 6, autocomplete: 'one-time-code', check: checks.sms, after: extra && extra.smsBtn }),
      h('fieldset', {}, h('legend', { text: '实名认证' }),
        field({ name: 'name', label: '姓名', maxlength: 32 }),
        field({ name: 'id_number', label: '居民身份证号码', maxlength: 18, check: checks.idNumber }),
        rn.el),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '下一步' }))]);
    ['name', 'id_number'].forEach(function (n) {
      inputOf(f, n).addEventListener('input', function () { if (rn.id) rn.reset('姓名或身份证号已修改，请重新进行实名认证。'); });
    });
    onSubmit(f, function () {
      if (!rn.passed) { fieldError(f, 'realname_verification_id', '请先完成实名认证'); return; }
      return api('POST', '/recovery/' + kind + '/verify', { recovery_ticket: ticket, sms_code: val(f, 'sms_code'), realname_verification_id: rn.id }).then(onDone, function (e) {
        if (e.code === 'REALNAME_FAILED') rn.reset('实名认证已失效，请重新认证。');
        throw e;
      });
    });
    return f;
  }

  function pageForgotPerson() {
    var STEPS = ['验证手机号码', '短信验证及实名认证', '重新设置密码', '完成'];
    var crumb = [['首页', '#/'], ['登录', '#/login'], ['忘记密码', '#/forgot'], ['自然人']];
    var cap = captcha();
    var f = h('form', { class: 'form card' },
      field({ name: 'phone', label: '已注册的手机号码', inputmode: 'numeric', maxlength: 11, autocomplete: 'tel', check: checks.phone }),
      cap.el,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '获取短信验证码' })));
    onSubmit(f, function () {
      var phone = val(f, 'phone');
      return api('POST', '/recovery/person/start', { phone: phone, captcha_id: cap.id || '', captcha_answer: val(f, 'captcha_answer') }).then(function (r) {
        var ticket = r.recovery_ticket;
        var note = h('p', {}, '短信验证码已发送至 ', h('strong', { text: phone.slice(0, 3) + '****' + phone.slice(7) }), '。');
        var v = verifyForm('person', ticket, note, function () { resetStep('person', ticket, STEPS, crumb); });
        page('忘记密码', [steps(STEPS, 1), v], { crumbs: crumb });
      }, function (e) { cap.refresh(); throw e; });
    });
    page('忘记密码', [steps(STEPS, 0), f], { crumbs: crumb });
  }

  function pageForgotEnterprise() {
    var STEPS = ['输入税号', '短信验证及实名认证', '重新设置密码', '完成'];
    var crumb = [['首页', '#/'], ['登录', '#/login'], ['忘记密码', '#/forgot'], ['企业']];
    var cap = captcha();
    var f = h('form', { class: 'form card' },
      field({ name: 'account', label: '社会信用代码或识别号', maxlength: 20, check: checks.account }),
      cap.el,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', text: '下一步' })));
    onSubmit(f, function () {
      return api('POST', '/recovery/enterprise/start', { account: val(f, 'account').toUpperCase(), captcha_id: cap.id || '', captcha_answer: val(f, 'captcha_answer') }).then(function (r) {
        var ticket = r.recovery_ticket;
        var group = h('div', { class: 'radios', role: 'radiogroup', 'aria-label': '短信验证码接收人' });
        r.recipients.forEach(function (a, i) {
          var id = nextId('rcp');
          var input = h('input', { type: 'radio', name: 'recipient_id', id: id, value: a.recipient_id });
          if (i === 0) input.checked = true;
          group.appendChild(h('div', { class: 'radio' }, input, h('label', { for: id, text: (ROLE[a.role] || a.role) + '：' + a.name_masked + '，手机 ' + a.phone_masked })));
        });
        var v;
        var sms = smsButton(function () {
          var c = v.querySelector('input[name=recipient_id]:checked');
          return api('POST', '/recovery/enterprise/sms', { recovery_ticket: ticket, recipient_id: c ? c.value : '' }).then(function (x) { toast('短信验证码已发送'); return x; });
        });
        sms.onerror = function (e) { clearErrors(v); showError(v, e, { recipient_id: 'sms_code' }); };
        var extra = h('div', {},
          h('p', { class: 'lead' }, '企业：', h('strong', { text: r.enterprise.name })),
          h('fieldset', {}, h('legend', { text: '选择短信验证码接收人（法人或财务负责人）' }), group));
        extra.smsBtn = sms;
        v = verifyForm('enterprise', ticket, extra, function () { resetStep('enterprise', ticket, STEPS, crumb); });
        page('忘记密码', [steps(STEPS, 1), v], { crumbs: crumb });
      }, function (e) { cap.refresh(); throw e; });
    });
    page('忘记密码', [steps(STEPS, 0), f], { crumbs: crumb });
  }

  // ------------------------------------------------------------------ router

  function route() {
    var hash = location.hash.replace(/^#/, '') || '/';
    var m;
    if (hash === '/') {
      // Logged in → home; else the login.
      return api('GET', '/session').then(function (s) { S.session = s; S.csrf = s.csrf_token; renderNav(); go('/home'); },
        function () { S.session = null; renderNav(); go('/login'); });
    }
    if (hash === '/login' || hash === '/login/cert') { renderNav(); pageLogin(hash === '/login/cert' ? 'cert' : 'user'); }
    else if (hash === '/login/officers') pageOfficers();
    else if (hash === '/login/verify') pageVerify();
    else if (hash === '/home') pageHome();
    else if (hash === '/users') pageUsers();
    else if (hash === '/users/add') pageAddUser();
    else if ((m = /^\/users\/grant\/([^/]+)$/.exec(hash))) pageGrant(decodeURIComponent(m[1]));
    else if (hash === '/register') pageRegister();
    else if (hash === '/register/person') pageRegisterPerson();
    else if (hash === '/register/enterprise') pageRegisterEnterprise();
    else if (hash === '/forgot') pageForgot();
    else if (hash === '/forgot/person') pageForgotPerson();
    else if (hash === '/forgot/enterprise') pageForgotEnterprise();
    else page('页面不存在', [h('p', {}, '您访问的页面不存在，', h('a', { href: '#/', text: '返回首页' }))]);
  }

  function start() {
    main = document.getElementById('main');
    renderNav();
    window.addEventListener('hashchange', route);
    // Know whether a session is live (for the navigation), then route.
    api('GET', '/session').then(function (s) { S.session = s; S.csrf = s.csrf_token; }, function () { S.session = null; })
      .then(function () { renderNav(); route(); });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
