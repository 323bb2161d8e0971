// Browser tests of the 电子税务局 portal (issue 5). Usage: node portal.test.mjs TAXGATE_BIN
// [--docs] [name-filter]. Each test starts its own `taxgate demo` (fresh data dir), drives
// real headless Chromium, and saves a screenshot of its last page under screenshots/.
import { mkdir, copyFile, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway, openBrowser, cli } from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const SHOTS = join(HERE, 'screenshots');
const DOCS = resolve(HERE, '../../docs/screenshots');
const args = process.argv.slice(2);
const BIN = resolve(args[0] || '');
const WRITE_DOCS = args.includes('--docs');
const FILTER = args.slice(1).find((a) => !a.startsWith('--'));

const DIANCHI = { account: '91530102709712345P', password: 'Dianchi@2026', name: '云南滇池科技有限公司' };
const ZHANGSAN = { name: '张三', phone: '13800000001', masked: '138****0001', id: '530102197503143518' };
const WANGWU = { name: '王五', phone: '13800000003', masked: '138****0003' };
const ZHOUFANG = { name: '周芳', phone: '13800000010', masked: '138****0010', id: '530111198711031466', password: 'Zhoufang#Tax2026' };
const WUMIN = { name: '吴敏', phone: '13800000011', masked: '138****0011', id: '530181199501204027', password: 'Wumin@Dianchi2026' };

// ------------------------------------------------------------------ assertions

function fail(msg) { throw new Error(msg); }

async function waitText(locator, re, what, timeout = 10000) {
  const end = Date.now() + timeout;
  let last = '';
  while (Date.now() < end) {
    last = (await locator.textContent().catch(() => '')) || '';
    if (re.test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  fail(`${what}: expected ${re}, got ${JSON.stringify(last.slice(0, 300))}`);
}

async function heading(page, name) {
  await page.getByRole('heading', { level: 1, name, exact: true }).waitFor();
}

async function menuModules(page) {
  await page.locator('#menu').waitFor();
  return page.locator('#menu a.mod').allTextContents();
}

// ------------------------------------------------------------------ flows

// The captcha id each page last answered: a captcha is single use, and after a refused
// login the portal fetches a new one, so wait for an id not answered yet.
const answered = new WeakMap();

// The visible form's captcha (the login page has one per tab, one tab shown). `answer`
// maps the right answer to the one typed (a wrong one, say).
async function fillCaptcha(page, g, answer = (a) => a) {
  const form = page.locator('form:visible');
  const img = form.locator('img.captcha-img[data-captcha-id]');
  await img.waitFor();
  // A new captcha, none on its way (its arrival would clear the answer typed).
  const current = async () => ((await img.getAttribute('data-loading')) === null ? img.getAttribute('data-captcha-id') : null);
  let id = await current();
  for (let i = 0; (id === null || id === answered.get(page)) && i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    id = await current();
  }
  if (id === null || id === answered.get(page)) fail('no new captcha after the last one was used');
  answered.set(page, id);
  await form.getByLabel('验证码', { exact: true }).fill(answer(await g.captchaAnswer(id)));
}

async function enterpriseLogin(page, g, password = DIANCHI.password) {
  await page.goto(`${g.url}/#/login`);
  await heading(page, '登录');
  await page.getByLabel('社会信用代码或识别号').fill(DIANCHI.account);
  await page.getByLabel('密码', { exact: true }).fill(password);
  await fillCaptcha(page, g);
  await page.getByRole('button', { name: '登录', exact: true }).click();
}

async function chooseOfficer(page, masked) {
  await heading(page, '办税人员选择');
  await page.locator('tr', { hasText: masked }).getByRole('button', { name: /^选择/ }).click();
  await heading(page, '身份校验');
}

async function verifyBySms(page, g, phone) {
  await page.getByRole('radio', { name: '输入短信验证码完成身份校验' }).check();
  const mark = await g.mark();
  await page.getByRole('button', { name: '获取验证码' }).click();
  const code = await g.smsSince(mark, phone);
  await waitText(page.locator('.sms-btn'), /重新获取\((59|60)s\)/, 'the 60-second resend countdown');
  await page.getByLabel('短信验证码', { exact: true }).fill(code);
  await page.locator('form:visible').getByRole('button', { name: '确定' }).click();
}

async function smsLogin(page, g, who) {
  await enterpriseLogin(page, g);
  await chooseOfficer(page, who.masked);
  await verifyBySms(page, g, who.phone);
  await heading(page, '企业办税');
}

async function openUsers(page) {
  await page.getByRole('link', { name: '我的信息 › 用户管理 › 授权信息' }).click();
  await heading(page, '授权信息');
}

async function realnameDev(page) {
  await page.getByRole('button', { name: '开始实名认证' }).click();
  await waitText(page.locator('.qr-payload'), /^taxgate-dev:\/\/realname\//, 'the QR payload');
  await page.locator('img.qr-img[src^="data:image/png"]').waitFor();
  await page.getByRole('button', { name: '完成实名认证（开发模式）' }).click();
  await waitText(page.locator('.rn-status'), /实名认证已通过/, 'the real-name status');
}

async function fillPerson(page, g, who) {
  await page.getByLabel('手机号码', { exact: true }).fill(who.phone);
  await fillCaptcha(page, g);
  const mark = await g.mark();
  await page.getByRole('button', { name: '获取验证码' }).click();
  const code = await g.smsSince(mark, who.phone);
  await page.getByLabel('短信验证码', { exact: true }).fill(code);
  await page.getByLabel('姓名', { exact: true }).fill(who.name);
  await page.getByLabel('居民身份证号码').fill(who.id);
  await page.getByLabel('设置密码').fill(who.password);
  await page.getByLabel('确认密码').fill(who.password);
  await realnameDev(page);
}

async function grantPage(page, masked) {
  await page.locator('tr', { hasText: masked }).getByRole('link', { name: /^授权/ }).click();
  await heading(page, '授权');
}

// 证书登录: the challenge (paid with the captcha) shown, signed by `taxgate dev sign`
// with the PKI's key.
async function certChallenge(page, g) {
  await fillCaptcha(page, g);
  await page.getByRole('button', { name: /获取登录挑战$/ }).click();
  const challenge = await waitText(page.locator('.challenge-text'), /^taxgate-ca-login:\S+$/, 'the challenge');
  await waitText(page.locator('.sign-cmd'), /^taxgate dev sign --key /, 'the signer command');
  if (!(await page.locator('.sign-cmd').textContent()).endsWith(`--challenge '${challenge}'`)) fail('the signer command lacks the challenge');
  await waitText(page.locator('.countdown'), /^(1[01]\d|120)$/, 'the expiry countdown');
  return challenge;
}

async function certSign(g, key, challenge) {
  return (await cli(BIN, ['dev', 'sign', '--key', join(g.pki, 'certs', key), '--challenge', challenge])).trim();
}

async function openCertTab(page, g) {
  await page.goto(`${g.url}/#/login`);
  await heading(page, '登录');
  await page.getByRole('tab', { name: '证书登录' }).click();
  if ((await page.getByRole('tab', { name: '证书登录' }).getAttribute('aria-selected')) !== 'true') fail('the 证书登录 tab is not selected');
  if (!page.url().endsWith('#/login/cert')) fail(`tab address: ${page.url()}`);
}

// ------------------------------------------------------------------ tests

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('sms-login', async ({ g, open, docs }) => {
  const { page, context } = await open('zhangsan');
  await enterpriseLogin(page, g);
  await heading(page, '办税人员选择');
  const rows = page.locator('table.officers tbody tr');
  if ((await rows.count()) !== 3) fail(`officer list: expected 3 rows, got ${await rows.count()}`);
  await waitText(page.locator('tr', { hasText: ZHANGSAN.masked }), /法定代表人.*税务登记.*短信验证码/, 'the legal rep row');
  await docs(page, 'officer-selection.png');
  await chooseOfficer(page, ZHANGSAN.masked);
  if (!(await page.getByRole('radio', { name: '输入密码完成身份校验' }).isDisabled())) fail('password method offered to a registry-only officer');
  await verifyBySms(page, g, ZHANGSAN.phone);
  await heading(page, '企业办税');
  await waitText(page.locator('.ent-banner'), new RegExp(`${DIANCHI.name}[\\s\\S]*${ZHANGSAN.name}`), 'enterprise and officer');
  const menu = await menuModules(page);
  for (const m of ['增值税申报', '发票使用', '申报信息查询', '公众服务']) if (!menu.includes(m)) fail(`menu lacks ${m}: ${menu}`);
  // Open a module: the proxied demo module sees a valid signed identity.
  const [popup] = await Promise.all([page.waitForEvent('popup'), page.getByRole('link', { name: '增值税申报', exact: true }).click()]);
  await popup.waitForLoadState();
  const echo = JSON.parse(await popup.locator('body').textContent());
  if (echo.module !== 'wybs.sfsb.zzs' || echo.signature_valid !== true) fail(`module echo: ${JSON.stringify(echo)}`);
  await popup.close();
  // The session ends (cookie gone): the next page goes back to the login with a message.
  await context.clearCookies();
  await page.getByRole('link', { name: '我的信息 › 用户管理 › 授权信息' }).click();
  await heading(page, '登录');
  await waitText(page.locator('.alert'), /登录已失效，请重新登录/, 'the expiry message');
  return page;
});

test('password-login', async ({ g, open }) => {
  const { page } = await open('wumin');
  // 自然人注册 of 吴敏, then 张三 adds her (添加用户), then she logs in with her password.
  await page.goto(`${g.url}/#/register`);
  await page.getByRole('link', { name: /自然人注册/ }).click();
  await heading(page, '自然人注册');
  await fillPerson(page, g, WUMIN);
  await page.getByLabel('所属税务机关').selectOption({ label: '国家税务总局昆明市五华区税务局' });
  await page.getByRole('button', { name: '登记' }).click();
  await heading(page, '注册成功');

  await smsLogin(page, g, ZHANGSAN);
  await openUsers(page);
  await page.getByRole('link', { name: '添加用户' }).click();
  await heading(page, '添加用户');
  await page.getByLabel('身份证号或手机号').fill(WUMIN.phone);
  await page.getByRole('button', { name: '查询' }).click();
  await page.getByRole('button', { name: /^创建用户/ }).click();
  await page.getByRole('button', { name: '确认' }).click();
  await heading(page, '授权信息');
  await waitText(page.locator('.alert.ok'), /创建成功/, 'the add-user result');
  await waitText(page.locator('tr', { hasText: WUMIN.name }), /办税人.*法人\/财务负责人添加/, 'the added user row');
  await page.getByRole('button', { name: '退出' }).click();
  await heading(page, '登录');

  await enterpriseLogin(page, g);
  await heading(page, '办税人员选择');
  await waitText(page.locator('tr', { hasText: WUMIN.masked }), /办税人.*密码、短信验证码/, 'her row with both methods');
  await chooseOfficer(page, WUMIN.masked);
  // A wrong password first: the message is next to the field.
  await page.getByLabel('自然人用户登录密码').fill('Wrong-password-1');
  await page.locator('form:visible').getByRole('button', { name: '确定' }).click();
  await waitText(page.locator('form:visible .err[data-for=password]'), /错误/, 'the wrong-password message');
  await page.getByLabel('自然人用户登录密码').fill(WUMIN.password);
  await page.locator('form:visible').getByRole('button', { name: '确定' }).click();
  await heading(page, '企业办税');
  await waitText(page.locator('.ent-banner'), /吴敏/, 'the officer name');
  const menu = await menuModules(page);
  if (!menu.includes('增值税申报') || menu.includes('申报信息查询')) fail(`default grants (我要办税 only) expected: ${menu}`);
  return page;
});

test('register-bind-login', async ({ g, open }) => {
  const { page } = await open('zhoufang');
  await page.goto(`${g.url}/#/register`);
  await page.getByRole('link', { name: /企业用户注册/ }).click();
  await heading(page, '企业用户注册');
  await fillPerson(page, g, ZHOUFANG);
  await page.getByRole('button', { name: '下一步' }).click();
  await page.getByLabel('统一社会信用代码').fill(DIANCHI.account);
  await page.getByRole('button', { name: '搜索' }).click();
  await waitText(page.locator('.ent-name'), new RegExp(DIANCHI.name), 'the found enterprise');
  await page.getByRole('radio', { name: /法定代表人/ }).check();
  const mark = await g.mark();
  await page.getByRole('button', { name: '获取验证码' }).click();
  const code = await g.smsSince(mark, ZHANGSAN.phone);
  await page.getByLabel('认证人短信验证码').fill(code);
  await page.getByRole('button', { name: '确认绑定' }).click();
  await waitText(page.locator('.alert.ok'), /注册成功/, 'the registration result');

  await page.getByRole('link', { name: '去登录' }).click();
  await enterpriseLogin(page, g);
  await heading(page, '办税人员选择');
  await waitText(page.locator('tr', { hasText: ZHOUFANG.masked }), /办税人.*企业用户注册.*密码、短信验证码/, 'her row');
  await chooseOfficer(page, ZHOUFANG.masked);
  await page.getByLabel('自然人用户登录密码').fill(ZHOUFANG.password);
  await page.locator('form:visible').getByRole('button', { name: '确定' }).click();
  await heading(page, '企业办税');
  const menu = await menuModules(page);
  if (!menu.includes('增值税申报') || menu.includes('申报信息查询')) fail(`default grants expected: ${menu}`);
  return page;
});

test('grant-revoke', async ({ g, open, docs }) => {
  const admin = (await open('zhangsan')).page;
  const officer = (await open('wangwu')).page;
  await smsLogin(admin, g, ZHANGSAN);
  await smsLogin(officer, g, WANGWU);
  let menu = await menuModules(officer);
  if (!menu.includes('增值税申报') || menu.includes('申报信息查询')) fail(`王五 starts with 我要办税: ${menu}`);

  // Grant 我要查询.
  await openUsers(admin);
  await grantPage(admin, WANGWU.name);
  await admin.getByRole('checkbox', { name: '我要查询' }).check();
  await admin.getByRole('button', { name: '确定' }).click();
  await heading(admin, '授权信息');
  await waitText(admin.locator('.alert.ok'), /授权成功/, 'the grant result');
  await waitText(admin.locator('tr', { hasText: WANGWU.name }), /我要办税、我要查询/, 'his grants');
  await docs(admin, 'authorization.png');
  await officer.reload();
  await heading(officer, '企业办税');
  menu = await menuModules(officer);
  if (!menu.includes('申报信息查询') || !menu.includes('增值税申报')) fail(`after the grant: ${menu}`);

  // Revoke 我要办税.
  await grantPage(admin, WANGWU.name);
  await admin.getByRole('checkbox', { name: '我要办税' }).uncheck();
  await admin.getByRole('button', { name: '确定' }).click();
  await waitText(admin.locator('.alert.ok'), /授权成功/, 'the revoke result');
  await officer.reload();
  await heading(officer, '企业办税');
  menu = await menuModules(officer);
  if (menu.includes('增值税申报') || !menu.includes('申报信息查询')) fail(`after revoking 我要办税: ${menu}`);

  // 回收: everything, with the confirmation that says it unbinds.
  await admin.locator('tr', { hasText: WANGWU.name }).getByRole('button', { name: /^回收/ }).click();
  const dialog = admin.getByRole('dialog');
  await waitText(dialog, /取消所有权限后，该用户会自动解绑/, 'the confirmation');
  await dialog.getByRole('button', { name: '确定回收' }).click();
  await waitText(admin.locator('.alert.ok'), /已自动解绑/, 'the unbind result');
  if ((await admin.locator('tr', { hasText: WANGWU.name }).count()) !== 0) fail('王五 still listed after 回收');
  await officer.reload();
  await heading(officer, '登录');
  await waitText(officer.locator('.alert'), /登录已失效/, 'his session ended');
  return admin;
});

test('not-bound', async ({ g, open }) => {
  const officer = (await open('wangwu')).page;
  const admin = (await open('zhangsan')).page;
  await enterpriseLogin(officer, g);
  await chooseOfficer(officer, WANGWU.masked);
  await smsLogin(admin, g, ZHANGSAN);
  await openUsers(admin);
  await admin.locator('tr', { hasText: WANGWU.name }).getByRole('button', { name: /^回收/ }).click();
  await admin.getByRole('dialog').getByRole('button', { name: '确定回收' }).click();
  await waitText(admin.locator('.alert.ok'), /已自动解绑/, 'the unbind result');
  await officer.getByRole('radio', { name: '输入短信验证码完成身份校验' }).check();
  await officer.getByRole('button', { name: '获取验证码' }).click();
  await waitText(officer.locator('form:visible .form-err'), /未绑定企业/, 'the 未绑定企业 message');
  return officer;
});

test('forgot-password', async ({ g, open }) => {
  const { page } = await open('zhangsan');
  await page.goto(`${g.url}/#/login`);
  await page.getByRole('link', { name: '忘记密码' }).click();
  await heading(page, '忘记密码');
  await page.getByRole('link', { name: /^企业/ }).click();
  await page.getByLabel('社会信用代码或识别号').fill(DIANCHI.account);
  await fillCaptcha(page, g);
  await page.getByRole('button', { name: '下一步' }).click();
  await page.getByRole('radio', { name: /法定代表人/ }).check();
  const mark = await g.mark();
  await page.getByRole('button', { name: '获取验证码' }).click();
  const code = await g.smsSince(mark, ZHANGSAN.phone);
  await page.getByLabel('短信验证码', { exact: true }).fill(code);
  await page.getByLabel('姓名', { exact: true }).fill(ZHANGSAN.name);
  await page.getByLabel('居民身份证号码').fill(ZHANGSAN.id);
  await realnameDev(page);
  await page.getByRole('button', { name: '下一步' }).click();
  const fresh = 'Dianchi#Reset2027';
  await page.getByLabel('新密码', { exact: true }).fill(fresh);
  await page.getByLabel('确认新密码').fill(fresh);
  await page.getByRole('button', { name: '提交' }).click();
  await waitText(page.locator('.alert.ok'), /企业密码已重置/, 'the reset result');
  // The old password no longer works; the new one does.
  await enterpriseLogin(page, g, DIANCHI.password);
  await waitText(page.locator('.err[data-for=password]'), /账号或密码错误/, 'the old password refused');
  await page.getByLabel('密码', { exact: true }).fill(fresh);
  await fillCaptcha(page, g);
  await page.getByRole('button', { name: '登录', exact: true }).click();
  await heading(page, '办税人员选择');
  return page;
});

test('forgot-password-person', async ({ g, open }) => {
  const { page } = await open('zhoufang');
  await page.goto(`${g.url}/#/register/person`);
  await heading(page, '自然人注册');
  const registered = Date.now();
  await fillPerson(page, g, ZHOUFANG);
  await page.getByLabel('所属税务机关').selectOption({ index: 1 });
  await page.getByRole('button', { name: '登记' }).click();
  await heading(page, '注册成功');
  // Registering the same ID number again (another phone) says 已注册.
  await page.goto(`${g.url}/#/register`);
  await page.getByRole('link', { name: /自然人注册/ }).click();
  await fillPerson(page, g, { ...ZHOUFANG, phone: WUMIN.phone });
  await page.getByLabel('所属税务机关').selectOption({ index: 1 });
  await page.getByRole('button', { name: '登记' }).click();
  await waitText(page.locator('.form-err'), /已注册/, 'the 已注册 message');
  // 忘记密码 → 自然人 (one SMS per phone per 60 s: wait out the registration's).
  await new Promise((r) => setTimeout(r, Math.max(0, registered + 61000 - Date.now())));
  await page.goto(`${g.url}/#/forgot`);
  await page.getByRole('link', { name: /^自然人/ }).click();
  await page.getByLabel('已注册的手机号码').fill(ZHOUFANG.phone);
  await fillCaptcha(page, g);
  const mark = await g.mark();
  await page.getByRole('button', { name: '获取短信验证码' }).click();
  const code = await g.smsSince(mark, ZHOUFANG.phone);
  await page.getByLabel('短信验证码', { exact: true }).fill('000000' === code ? '111111' : '000000');
  await page.getByLabel('姓名', { exact: true }).fill(ZHOUFANG.name);
  await page.getByLabel('居民身份证号码').fill(ZHOUFANG.id);
  await realnameDev(page);
  await page.getByRole('button', { name: '下一步' }).click();
  await waitText(page.locator('.err[data-for=sms_code]'), /短信验证码错误/, 'the wrong-code message');
  await page.getByLabel('短信验证码', { exact: true }).fill(code);
  await page.getByRole('button', { name: '下一步' }).click();
  await page.getByLabel('新密码', { exact: true }).fill('Zhoufang#Reset2027');
  await page.getByLabel('确认新密码').fill('Zhoufang#Reset2027');
  await page.getByRole('button', { name: '提交' }).click();
  await waitText(page.locator('.alert.ok'), /密码已重置/, 'the reset result');
  return page;
});

test('ca-login', async ({ g, open, docs }) => {
  const { page } = await open('zhangsan');
  await openCertTab(page, g);
  // Every field is required; the challenge first.
  await page.getByRole('button', { name: '登录', exact: true }).click();
  await waitText(page.locator('.err[data-for=certificate]'), /请输入证书/, 'the empty certificate');
  await waitText(page.locator('.err[data-for=signature]'), /请输入签名/, 'the empty signature');
  // A challenge costs a solved captcha: none typed, then a wrong one (spent: a new image).
  await page.getByRole('button', { name: '获取登录挑战' }).click();
  await waitText(page.locator('form:visible .err[data-for=captcha_answer]'), /^请输入图形验证码$/, 'the empty captcha');
  await fillCaptcha(page, g, (a) => `${a}x`);
  await page.getByRole('button', { name: '获取登录挑战' }).click();
  await waitText(page.locator('form:visible .err[data-for=captcha_answer]'), /验证码错误或已失效/, 'the CAPTCHA_INVALID message');
  if (await page.locator('.challenge-text').count()) fail('a challenge shown for a wrong captcha');
  const challenge = await certChallenge(page, g);
  // The CA certificate as a DER .cer file: the page sends it as base64.
  const pem = await readFile(join(g.pki, 'certs', `${DIANCHI.account}.pem`), 'utf8');
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  await page.getByLabel('证书文件').setInputFiles({ name: 'dianchi.cer', mimeType: 'application/pkix-cert', buffer: der });
  await waitText(page.locator('.field', { has: page.getByLabel('证书文件') }).locator('.hint'), /已读取 dianchi\.cer（DER/, 'the file read');
  if ((await page.getByLabel('证书', { exact: true }).inputValue()) !== der.toString('base64')) fail('the DER file not as base64 in 证书');
  await page.getByLabel('签名', { exact: true }).fill(await certSign(g, `${DIANCHI.account}.key`, challenge));
  await docs(page, 'certificate-login.png');
  await page.getByRole('button', { name: '登录', exact: true }).click();
  await heading(page, '办税人员选择');
  await waitText(page.locator('.lead'), new RegExp(`${DIANCHI.name}[\\s\\S]*CA登录`), 'the enterprise and the login kind');
  await chooseOfficer(page, ZHANGSAN.masked);
  await verifyBySms(page, g, ZHANGSAN.phone);
  await heading(page, '企业办税');
  await waitText(page.locator('.ent-banner'), new RegExp(`${DIANCHI.name}[\\s\\S]*${ZHANGSAN.name}`), 'enterprise and officer');
  return page;
});

test('ca-login-bad-signature', async ({ g, open }) => {
  const { page } = await open('zhangsan');
  await openCertTab(page, g);
  // The 税控设备 certificate pasted as PEM; the signature is of another text.
  const challenge = await certChallenge(page, g);
  const key = `${DIANCHI.account}-device.key`;
  await page.getByLabel('证书', { exact: true }).fill(await readFile(join(g.pki, 'certs', `${DIANCHI.account}-device.pem`), 'utf8'));
  await page.getByLabel('签名', { exact: true }).fill(await certSign(g, key, `${challenge}-not-it`));
  await page.getByRole('button', { name: '登录', exact: true }).click();
  await waitText(page.locator('.err[data-for=signature]'), /^证书签名验证失败$/, 'the SIGNATURE_INVALID message');
  await heading(page, '登录');
  if ((await page.getByRole('tab', { name: '证书登录' }).getAttribute('aria-selected')) !== 'true') fail('left the 证书登录 tab');
  if (!(await page.getByLabel('证书', { exact: true }).inputValue()).includes('BEGIN CERTIFICATE')) fail('the certificate was cleared');
  // The attempt spent the challenge: the page says so and offers a new one.
  if (await page.locator('.challenge-text').count()) fail('the spent challenge still shown');
  await waitText(page.getByRole('status').filter({ hasText: '登录挑战' }), /只能使用一次，请重新获取/, 'the spent-challenge note');
  // A fresh challenge, signed right: 税控设备登录.
  const again = await certChallenge(page, g);
  if (again === challenge) fail('the same challenge twice');
  if ((await page.getByLabel('签名', { exact: true }).inputValue()) !== '') fail('the old signature kept with a new challenge');
  await page.getByLabel('签名', { exact: true }).fill(await certSign(g, key, again));
  await page.getByRole('button', { name: '登录', exact: true }).click();
  await heading(page, '办税人员选择');
  await waitText(page.locator('.lead'), /税控设备登录/, 'the login kind');
  return page;
});

// ------------------------------------------------------------------ runner

async function run() {
  if (!args[0]) { console.error('usage: node portal.test.mjs TAXGATE_BIN [--docs] [filter]'); process.exit(2); }
  await mkdir(SHOTS, { recursive: true });
  if (WRITE_DOCS) await mkdir(DOCS, { recursive: true });
  let failed = 0, ran = 0;
  const started = Date.now();
  for (const [i, t] of tests.entries()) {
    if (FILTER && !t.name.includes(FILTER)) continue;
    ran += 1;
    const t0 = Date.now();
    const users = [];
    let g = null, last = null, error = null;
    const shot = join(SHOTS, `${String(i + 1).padStart(2, '0')}-${t.name}.png`);
    try {
      g = await startGateway(BIN);
      const ctx = {
        g,
        open: async (name) => { const b = await openBrowser(name); users.push(b); last = b.page; return b; },
        docs: async (page, file) => {
          if (!WRITE_DOCS) return;
          const p = join(DOCS, file);
          await page.screenshot({ path: p, fullPage: true });
          console.log(`  docs screenshot: ${p}`);
        },
      };
      const result = await Promise.race([
        t.fn(ctx),
        new Promise((_, rej) => setTimeout(() => rej(new Error('test timed out after 90 s')), 90000)),
      ]);
      if (result) last = result;
      const problems = users.flatMap((u) => u.problems.map((p) => `[${u.name}] ${p}`));
      if (problems.length) fail(`browser problems:\n    ${problems.join('\n    ')}`);
    } catch (e) {
      error = e;
    }
    if (last) await last.screenshot({ path: shot, fullPage: true }).catch((e) => console.log(`  (screenshot failed: ${e.message})`));
    for (const u of users) await u.close();
    if (g) await g.stop();
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (error) {
      failed += 1;
      console.log(`FAIL ${t.name} (${secs}s)\n  ${String(error.stack || error).split('\n').join('\n  ')}`);
      if (g) console.log(`  gateway log (tail):\n    ${g.log.join('').split('\n').slice(-15).join('\n    ')}`);
    } else {
      console.log(`ok   ${t.name} (${secs}s)`);
    }
    console.log(`  screenshot: ${shot}`);
  }
  console.log(`\n${ran - failed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  if (ran === 0) { console.error('no test matched'); process.exit(2); }
  process.exit(failed ? 1 : 0);
}

run().catch((e) => { console.error(e); process.exit(1); });
