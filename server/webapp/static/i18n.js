// Vietnamese by default; English by choice (saved) or when the browser prefers it.
const T = {
  vi: {
    app_name: "Điểm danh cách ly", activate_title: "Kích hoạt", activate_btn: "Kích hoạt",
    activate_help: "Nhập mã kích hoạt do trạm y tế cấp (XXXXX-XXXXX) hoặc mở liên kết trong mã QR.",
    isolation_end: "Kết thúc cách ly", status: "Hôm nay", checkin_btn: "Điểm danh ngay",
    declare_btn: "Khai báo y tế", history_btn: "Lịch sử", capture_btn: "Chụp ảnh",
    file_btn: "Chọn ảnh / mở máy ảnh", back: "Quay lại", temp: "Nhiệt độ (°C)", spo2: "SpO2 (%)",
    hr: "Nhịp tim (lần/phút)", send: "Gửi khai báo", no_prompt: "Hiện chưa có yêu cầu điểm danh.",
    next_at: "Yêu cầu tiếp theo", closes_in: "Còn lại", attempts_left: "Số lần thử còn lại",
    sending: "Đang gửi…", queued: "Chưa có mạng: khai báo đã được lưu và sẽ tự gửi khi có mạng.",
    sent: "Đã gửi khai báo.", revoked: "Thiết bị này không còn được kích hoạt. Hãy nhập mã mới.",
    offline: "Không có kết nối mạng. Sẽ thử lại.", retake: "Chụp lại", no_camera: "Không mở được máy ảnh: hãy chọn ảnh.",
    no_gps: "Hãy cho phép truy cập vị trí để điểm danh.", checkin: "Điểm danh", declaration: "Khai báo",
    challenge_intro: "Lần điểm danh này cần thêm một thao tác: nhìn thẳng vào máy ảnh, bấm Chụp ảnh, rồi",
    reminder: "Đến giờ điểm danh! Bấm “Điểm danh ngay”.",
    push_btn: "Bật thông báo nhắc điểm danh", push_on: "Đã bật thông báo: bạn sẽ được nhắc khi đến giờ điểm danh.",
    home_needed: "Trạm y tế cần vị trí nhà bạn. Khi đang ở nhà, bấm nút dưới đây để gửi vị trí; cán bộ sẽ xác nhận.",
    home_btn: "Tôi đang ở nhà — gửi vị trí", home_sent: "Đã gửi vị trí nhà, chờ cán bộ xác nhận.",
    home_wait: "Vị trí nhà đang chờ cán bộ xác nhận.",
    challenge_now: "Bây giờ hãy", challenge_camera: "Lần này cần máy ảnh trực tiếp (không dùng ảnh có sẵn).",
    do_blink: "chớp mắt một lần.", do_turn_left: "từ từ quay đầu sang trái.", do_turn_right: "từ từ quay đầu sang phải.",
    symptoms: { fever: "Sốt", cough: "Ho", sore_throat: "Đau họng", runny_nose: "Sổ mũi", fatigue: "Mệt mỏi",
      muscle_pain: "Đau cơ", headache: "Đau đầu", loss_of_taste_or_smell: "Mất vị giác hoặc khứu giác",
      diarrhea: "Tiêu chảy", nausea: "Buồn nôn", dyspnea: "Khó thở", chest_pain: "Đau tức ngực",
      confusion: "Lú lẫn", bluish_lips: "Môi tím tái" },
  },
  en: {
    app_name: "Isolation check-in", activate_title: "Activate", activate_btn: "Activate",
    activate_help: "Type the activation code from the health station (XXXXX-XXXXX) or open the QR code's link.",
    isolation_end: "Isolation ends", status: "Today", checkin_btn: "Check in now",
    declare_btn: "Health declaration", history_btn: "History", capture_btn: "Take photo",
    file_btn: "Choose a photo / open camera", back: "Back", temp: "Temperature (°C)", spo2: "SpO2 (%)",
    hr: "Heart rate (bpm)", send: "Send declaration", no_prompt: "No check-in is due now.",
    next_at: "Next check-in", closes_in: "Time left", attempts_left: "Attempts left",
    sending: "Sending…", queued: "Offline: the declaration is saved and will be sent when the network returns.",
    sent: "Declaration sent.", revoked: "This phone is no longer activated. Enter a new code.",
    offline: "No network connection. Will retry.", retake: "Retake", no_camera: "Camera unavailable: choose a photo.",
    no_gps: "Allow location access to check in.", checkin: "Check-in", declaration: "Declaration",
    challenge_intro: "This check-in needs one more action: look straight at the camera, tap Take photo, then",
    reminder: "Time to check in! Tap “Check in now”.",
    push_btn: "Turn on check-in notifications", push_on: "Notifications on: you will be reminded when a check-in is due.",
    home_needed: "The health station needs your home position. When you are at home, tap the button below to send it; staff will confirm it.",
    home_btn: "I am at home — send my position", home_sent: "Home position sent; staff will confirm it.",
    home_wait: "Your home position waits for staff to confirm it.",
    challenge_now: "Now", challenge_camera: "This time the live camera is needed (not a saved photo).",
    do_blink: "blink once.", do_turn_left: "slowly turn your head to your left.", do_turn_right: "slowly turn your head to your right.",
    symptoms: { fever: "Fever", cough: "Cough", sore_throat: "Sore throat", runny_nose: "Runny nose",
      fatigue: "Fatigue", muscle_pain: "Muscle pain", headache: "Headache",
      loss_of_taste_or_smell: "Loss of taste or smell", diarrhea: "Diarrhoea", nausea: "Nausea",
      dyspnea: "Shortness of breath", chest_pain: "Chest pain", confusion: "Confusion", bluish_lips: "Bluish lips" },
  },
};
// The browser's preference list, best first (what it sends as Accept-Language): the first of
// them we speak wins, as the server's Accept-Language match does; "fr-FR, en" reads English.
export function preferred(list = navigator.languages?.length ? navigator.languages : [navigator.language]) {
  for (const tag of list || []) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base === "vi" || base === "en") return base;
  }
  return "vi";
}
export function lang() {
  const saved = localStorage.getItem("lang"); // a choice made with the EN/VI button sticks
  if (saved === "vi" || saved === "en") return saved;
  return preferred();
}
export function setLang(l) { localStorage.setItem("lang", l); }
export function t(key) { return T[lang()][key] ?? key; }
export function symptomLabels() { return T[lang()].symptoms; }
