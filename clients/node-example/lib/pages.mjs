// HTML pages and their text in Vietnamese (default) and English. Every value that comes from
// outside (claims, error codes) goes through escapeHtml; pages work without JavaScript.

export const LANGS = ['vi', 'en'];

const TEXT = {
  vi: {
    title: 'Cổng ví dụ Node (demo)',
    intro: 'Cổng dịch vụ mẫu viết bằng Node.js với thư viện openid-client, đăng nhập bằng ' +
      'tài khoản định danh điện tử.',
    signedOut: 'Bạn chưa đăng nhập.',
    signIn: 'Đăng nhập bằng định danh điện tử',
    signedIn: 'Bạn đã đăng nhập.',
    sub: 'Mã định danh của bạn tại cổng này (sub, riêng cho từng cổng)',
    level: 'Mức định danh (acr)',
    methods: 'Cách xác thực (amr)',
    claims: 'Thông tin cổng nhận được',
    claim: 'Thông tin',
    value: 'Giá trị',
    signOut: 'Đăng xuất',
    signOutTitle: 'Đăng xuất',
    signOutText: 'Bạn sẽ đăng xuất khỏi cổng này và khỏi tài khoản định danh điện tử ' +
      '(các cổng khác dùng cùng phiên đăng nhập cũng sẽ được đăng xuất).',
    notSignedIn: 'Bạn không đăng nhập nên không cần đăng xuất.',
    home: 'Về trang chủ',
    switchLang: 'English',
    errorTitle: 'Không thể hoàn tất yêu cầu',
    errorCode: 'Mã lỗi',
    tryAgain: 'Thử lại',
    err_access_denied: 'Bạn đã từ chối chia sẻ thông tin với cổng này, nên chưa thể đăng nhập.',
    err_unmet_authentication_requirements: 'Tài khoản của bạn chưa đạt mức định danh mà dịch ' +
      'vụ này yêu cầu.',
    err_login_required: 'Bạn cần đăng nhập lại.',
    err_interaction_required: 'Bạn cần đăng nhập lại.',
    err_consent_required: 'Bạn cần đồng ý chia sẻ thông tin với cổng này.',
    err_temporarily_unavailable: 'Hệ thống định danh đang bận. Vui lòng thử lại sau.',
    err_login_expired: 'Phiên đăng nhập đã hết hạn hoặc không hợp lệ. Vui lòng đăng nhập lại.',
    err_sign_in_failed: 'Không thể hoàn tất đăng nhập. Vui lòng thử lại.',
    err_idp_unavailable: 'Không kết nối được tới hệ thống định danh. Vui lòng thử lại sau.',
    err_bad_request: 'Yêu cầu không hợp lệ.',
    err_csrf: 'Biểu mẫu đã hết hạn. Vui lòng thử lại.',
    err_not_found: 'Không tìm thấy trang này.',
    err_method_not_allowed: 'Phương thức không được hỗ trợ cho trang này.',
    err_server_error: 'Đã có lỗi xảy ra. Vui lòng thử lại sau.',
  },
  en: {
    title: 'Node example portal (demo)',
    intro: 'A sample service portal written in Node.js with the openid-client library, signing ' +
      'in with the national eID account.',
    signedOut: 'You are not signed in.',
    signIn: 'Sign in with your national eID',
    signedIn: 'You are signed in.',
    sub: 'Your identifier at this portal (sub, different for every portal)',
    level: 'Assurance level (acr)',
    methods: 'Authentication methods (amr)',
    claims: 'Information this portal received',
    claim: 'Claim',
    value: 'Value',
    signOut: 'Sign out',
    signOutTitle: 'Sign out',
    signOutText: 'You will be signed out of this portal and of your national eID account ' +
      '(other portals sharing that sign-in are signed out too).',
    notSignedIn: 'You are not signed in, so there is nothing to sign out of.',
    home: 'Back to the home page',
    switchLang: 'Tiếng Việt',
    errorTitle: 'The request could not be completed',
    errorCode: 'Error code',
    tryAgain: 'Try again',
    err_access_denied: 'You declined to share your information with this portal, so you are ' +
      'not signed in.',
    err_unmet_authentication_requirements: 'Your account does not yet have the assurance level ' +
      'this service needs.',
    err_login_required: 'You need to sign in again.',
    err_interaction_required: 'You need to sign in again.',
    err_consent_required: 'You need to agree to share your information with this portal.',
    err_temporarily_unavailable: 'The identity provider is busy. Please try again later.',
    err_login_expired: 'This sign-in has expired or is not valid. Please sign in again.',
    err_sign_in_failed: 'Sign-in could not be completed. Please try again.',
    err_idp_unavailable: 'The identity provider cannot be reached. Please try again later.',
    err_bad_request: 'The request is not valid.',
    err_csrf: 'The form has expired. Please try again.',
    err_not_found: 'This page does not exist.',
    err_method_not_allowed: 'This method is not supported for this page.',
    err_server_error: 'Something went wrong. Please try again later.',
  },
};

export const t = (lang, key) => TEXT[lang]?.[key] ?? TEXT.vi[key] ?? key;
export const hasErrorText = (code) => Object.hasOwn(TEXT.vi, `err_${code}`);

export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

const STYLE = 'body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;' +
  'padding:0 1rem;color:#1a1a1a}header{display:flex;justify-content:space-between;' +
  'align-items:baseline;gap:1rem}table{border-collapse:collapse;width:100%}' +
  'th,td{text-align:left;border-bottom:1px solid #ddd;padding:.3rem .5rem;vertical-align:top;' +
  'overflow-wrap:anywhere}code{overflow-wrap:anywhere}a,button{font:inherit}' +
  'button{padding:.4rem 1rem;cursor:pointer}.button{display:inline-block;padding:.4rem 1rem;' +
  'background:#a50e0e;color:#fff;text-decoration:none;border-radius:4px}';

function layout(lang, path, title, body) {
  const other = lang === 'vi' ? 'en' : 'vi';
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title === t(lang, 'title') ? title : `${title} · ${t(lang, 'title')}`)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<p><a href="/">${escapeHtml(t(lang, 'title'))}</a></p>
<p><a href="${escapeHtml(path)}?lang=${other}" lang="${other}">${escapeHtml(t(lang, 'switchLang'))}</a></p>
</header>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

function logoutForm(lang, csrf) {
  return `<form method="post" action="/logout">
<input type="hidden" name="csrf_token" value="${escapeHtml(csrf)}">
<button type="submit">${escapeHtml(t(lang, 'signOut'))}</button>
</form>`;
}

const show = (value) => (typeof value === 'string' ? value : JSON.stringify(value));

export function homePage(lang, session) {
  const user = session?.user;
  if (!user) {
    return layout(lang, '/', t(lang, 'title'), `<p>${escapeHtml(t(lang, 'intro'))}</p>
<p>${escapeHtml(t(lang, 'signedOut'))}</p>
<p><a class="button" href="/login">${escapeHtml(t(lang, 'signIn'))}</a></p>`);
  }
  const rows = Object.entries(user.claims)
    .map(([k, v]) => `<tr><th scope="row"><code>${escapeHtml(k)}</code></th>` +
      `<td>${escapeHtml(show(v))}</td></tr>`).join('\n');
  return layout(lang, '/', t(lang, 'title'), `<p>${escapeHtml(t(lang, 'signedIn'))}</p>
<dl>
<dt>${escapeHtml(t(lang, 'sub'))}</dt><dd><code>${escapeHtml(user.sub)}</code></dd>
<dt>${escapeHtml(t(lang, 'level'))}</dt><dd><code>${escapeHtml(user.acr)}</code></dd>
<dt>${escapeHtml(t(lang, 'methods'))}</dt><dd><code>${escapeHtml(user.amr.join(', '))}</code></dd>
</dl>
<h2>${escapeHtml(t(lang, 'claims'))}</h2>
<table>
<thead><tr><th scope="col">${escapeHtml(t(lang, 'claim'))}</th><th scope="col">${escapeHtml(t(lang, 'value'))}</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
${logoutForm(lang, session.csrf)}`);
}

export function logoutPage(lang, session) {
  if (!session?.user) {
    return layout(lang, '/logout', t(lang, 'signOutTitle'),
      `<p>${escapeHtml(t(lang, 'notSignedIn'))}</p>
<p><a href="/">${escapeHtml(t(lang, 'home'))}</a></p>`);
  }
  return layout(lang, '/logout', t(lang, 'signOutTitle'),
    `<p>${escapeHtml(t(lang, 'signOutText'))}</p>
${logoutForm(lang, session.csrf)}
<p><a href="/">${escapeHtml(t(lang, 'home'))}</a></p>`);
}

/** A clean error page: translated message, the protocol error code, a way back. */
export function errorPage(lang, code, { retry = false } = {}) {
  const key = hasErrorText(code) ? `err_${code}` : 'err_sign_in_failed';
  return layout(lang, '/', t(lang, 'errorTitle'), `<p>${escapeHtml(t(lang, key))}</p>
<p>${escapeHtml(t(lang, 'errorCode'))}: <code>${escapeHtml(code)}</code></p>
<p>${retry ? `<a href="/login">${escapeHtml(t(lang, 'tryAgain'))}</a> · ` : ''}<a href="/">${escapeHtml(t(lang, 'home'))}</a></p>`);
}
