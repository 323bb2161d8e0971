/* A small QR code encoder (ISO/IEC 18004) for the 实名认证 payload: byte mode, error
 * correction level M, versions 1–10 (up to 213 bytes), fixed mask 0. Follows the
 * structure of Project Nayuki's reference implementation (MIT). No network, no DOM:
 * TaxgateQR.matrix(text) → rows of booleans (true = dark), or null when too long.
 */
'use strict';

(function () {
  // Level M, index = version (1..10).
  var ECC_PER_BLOCK = [-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26];
  var NUM_BLOCKS = [-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5];
  var FORMAT_ECL_M = 0;
  var MASK = 0;

  function rawDataModules(ver) {
    var r = (16 * ver + 128) * ver + 64;
    if (ver >= 2) {
      var n = Math.floor(ver / 7) + 2;
      r -= (25 * n - 10) * n - 55;
      if (ver >= 7) r -= 36;
    }
    return r;
  }

  function dataCodewords(ver) {
    return Math.floor(rawDataModules(ver) / 8) - ECC_PER_BLOCK[ver] * NUM_BLOCKS[ver];
  }

  function gfMul(x, y) {
    var z = 0;
    for (var i = 7; i >= 0; i--) {
      z = (z << 1) ^ ((z >>> 7) * 0x11d);
      z ^= ((y >>> i) & 1) * x;
    }
    return z;
  }

  function rsDivisor(degree) {
    var result = [];
    for (var i = 0; i < degree - 1; i++) result.push(0);
    result.push(1);
    var root = 1;
    for (i = 0; i < degree; i++) {
      for (var j = 0; j < result.length; j++) {
        result[j] = gfMul(result[j], root);
        if (j + 1 < result.length) result[j] ^= result[j + 1];
      }
      root = gfMul(root, 0x02);
    }
    return result;
  }

  function rsRemainder(data, divisor) {
    var result = divisor.map(function () { return 0; });
    data.forEach(function (b) {
      var factor = b ^ result.shift();
      result.push(0);
      divisor.forEach(function (coef, i) { result[i] ^= gfMul(coef, factor); });
    });
    return result;
  }

  function utf8(text) {
    var out = [];
    var s = unescape(encodeURIComponent(text));
    for (var i = 0; i < s.length; i++) out.push(s.charCodeAt(i));
    return out;
  }

  function matrix(text) {
    var bytes = utf8(text);
    var ver;
    for (ver = 1; ver <= 10; ver++) {
      var ccBits = ver <= 9 ? 8 : 16;
      if (4 + ccBits + 8 * bytes.length <= dataCodewords(ver) * 8) break;
    }
    if (ver > 10) return null;
    var size = ver * 4 + 17;

    // Data bits: mode 0100, count, bytes, terminator, padding.
    var bits = [];
    function put(val, len) { for (var i = len - 1; i >= 0; i--) bits.push((val >>> i) & 1); }
    put(4, 4);
    put(bytes.length, ver <= 9 ? 8 : 16);
    bytes.forEach(function (b) { put(b, 8); });
    var capacity = dataCodewords(ver) * 8;
    put(0, Math.min(4, capacity - bits.length));
    put(0, (8 - bits.length % 8) % 8);
    for (var pad = 0xec; bits.length < capacity; pad ^= 0xec ^ 0x11) put(pad, 8);
    var data = [];
    for (var i = 0; i < bits.length; i += 8) {
      var v = 0;
      for (var j = 0; j < 8; j++) v = (v << 1) | bits[i + j];
      data.push(v);
    }

    // Error correction and interleaving.
    var numBlocks = NUM_BLOCKS[ver], eccLen = ECC_PER_BLOCK[ver];
    var raw = Math.floor(rawDataModules(ver) / 8);
    var numShort = numBlocks - raw % numBlocks;
    var shortLen = Math.floor(raw / numBlocks);
    var div = rsDivisor(eccLen);
    var blocks = [];
    for (var b = 0, k = 0; b < numBlocks; b++) {
      var dat = data.slice(k, k + shortLen - eccLen + (b < numShort ? 0 : 1));
      k += dat.length;
      var ecc = rsRemainder(dat, div);
      if (b < numShort) dat.push(0);
      blocks.push(dat.concat(ecc));
    }
    var words = [];
    for (i = 0; i < blocks[0].length; i++) {
      blocks.forEach(function (block, bj) {
        if (i !== shortLen - eccLen || bj >= numShort) words.push(block[i]);
      });
    }

    // Function patterns.
    var mods = [], fn = [];
    for (var y = 0; y < size; y++) {
      mods.push(new Array(size).fill(false));
      fn.push(new Array(size).fill(false));
    }
    function set(x, y2, dark) { mods[y2][x] = dark; fn[y2][x] = true; }
    for (i = 0; i < size; i++) { set(6, i, i % 2 === 0); set(i, 6, i % 2 === 0); }
    [[3, 3], [size - 4, 3], [3, size - 4]].forEach(function (c) {
      for (var dy = -4; dy <= 4; dy++) {
        for (var dx = -4; dx <= 4; dx++) {
          var d = Math.max(Math.abs(dx), Math.abs(dy)), xx = c[0] + dx, yy = c[1] + dy;
          if (xx >= 0 && xx < size && yy >= 0 && yy < size) set(xx, yy, d !== 2 && d !== 4);
        }
      }
    });
    var align = [];
    if (ver >= 2) {
      var n = Math.floor(ver / 7) + 2;
      var step = Math.ceil((ver * 4 + 4) / (n * 2 - 2)) * 2;
      align = [6];
      for (var pos = size - 7; align.length < n; pos -= step) align.splice(1, 0, pos);
    }
    align.forEach(function (ay, ai) {
      align.forEach(function (ax, aj) {
        var last = align.length - 1;
        if ((ai === 0 && aj === 0) || (ai === 0 && aj === last) || (ai === last && aj === 0)) return;
        for (var dy = -2; dy <= 2; dy++) {
          for (var dx = -2; dx <= 2; dx++) set(ax + dx, ay + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
        }
      });
    });
    function formatBits() {
      var d = (FORMAT_ECL_M << 3) | MASK;
      var rem = d;
      for (var t = 0; t < 10; t++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
      var fb = ((d << 10) | rem) ^ 0x5412;
      function bit(q) { return ((fb >>> q) & 1) !== 0; }
      for (var q = 0; q <= 5; q++) set(8, q, bit(q));
      set(8, 7, bit(6));
      set(8, 8, bit(7));
      set(7, 8, bit(8));
      for (q = 9; q < 15; q++) set(14 - q, 8, bit(q));
      for (q = 0; q < 8; q++) set(size - 1 - q, 8, bit(q));
      for (q = 8; q < 15; q++) set(8, size - 15 + q, bit(q));
      set(8, size - 8, true);
    }
    formatBits();
    if (ver >= 7) {
      var rem = ver;
      for (var t = 0; t < 12; t++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
      var vb = (ver << 12) | rem;
      for (i = 0; i < 18; i++) {
        var dark = ((vb >>> i) & 1) !== 0;
        var a = size - 11 + i % 3, c = Math.floor(i / 3);
        set(a, c, dark);
        set(c, a, dark);
      }
    }

    // Codewords in the zigzag, then mask 0 ((x + y) even) on data modules.
    var bi = 0;
    for (var right = size - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5;
      for (var vert = 0; vert < size; vert++) {
        for (j = 0; j < 2; j++) {
          var x = right - j;
          var upward = ((right + 1) & 2) === 0;
          var yy = upward ? size - 1 - vert : vert;
          if (!fn[yy][x] && bi < words.length * 8) {
            mods[yy][x] = ((words[bi >>> 3] >>> (7 - (bi & 7))) & 1) !== 0;
            bi++;
          }
        }
      }
    }
    for (y = 0; y < size; y++) {
      for (x = 0; x < size; x++) if (!fn[y][x] && (x + y) % 2 === 0) mods[y][x] = !mods[y][x];
    }
    return mods;
  }

  // A PNG data: URL of the code (CSP allows data: images), with a 4-module quiet zone.
  function dataUrl(text, scale) {
    var m = matrix(text);
    if (!m) return null;
    var s = scale || 4, q = 4, n = m.length + 2 * q;
    var canvas = document.createElement('canvas');
    canvas.width = canvas.height = n * s;
    var ctx = canvas.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, n * s, n * s);
    ctx.fillStyle = '#000';
    m.forEach(function (row, y) {
      row.forEach(function (dark, x) { if (dark) ctx.fillRect((x + q) * s, (y + q) * s, s, s); });
    });
    return canvas.toDataURL('image/png');
  }

  window.TaxgateQR = { matrix: matrix, dataUrl: dataUrl };
})();
