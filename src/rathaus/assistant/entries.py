"""What an importer hands to the knowledge base: one entry, independent of its source format."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Structured facts of a service page, in the order and with the labels they are shown.
FACTS: dict[str, str] = {
    "fees": "Gebühren",
    "required_documents": "Mitzubringen / Unterlagen",
    "office": "Zuständige Stelle",
    "address": "Adresse",
    "opening_hours": "Öffnungszeiten",
    "phone": "Telefon",
    "email": "E-Mail",
    "online_url": "Online-Dienst",
    "appointment_url": "Termin vereinbaren",
    "forms": "Formulare",
}
# The labels in the languages of questions the assistant recognises, shown next to the German
# ones for a question in that language (the values stay as the municipality wrote them).
FACT_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "fees": "Fees", "required_documents": "What to bring / documents",
        "office": "Responsible office", "address": "Address", "opening_hours": "Opening hours",
        "phone": "Phone", "email": "E-mail", "online_url": "Online service",
        "appointment_url": "Book an appointment", "forms": "Forms",
    },
    "tr": {
        "fees": "Ücretler", "required_documents": "Getirmeniz gerekenler / belgeler",
        "office": "Yetkili birim", "address": "Adres", "opening_hours": "Çalışma saatleri",
        "phone": "Telefon", "email": "E-posta", "online_url": "Çevrimiçi hizmet",
        "appointment_url": "Randevu alın", "forms": "Formlar",
    },
    "uk": {
        "fees": "Збори", "required_documents": "Що взяти з собою / документи",
        "office": "Відповідальний орган", "address": "Адреса", "opening_hours": "Години роботи",
        "phone": "Телефон", "email": "Електронна пошта", "online_url": "Онлайн-послуга",
        "appointment_url": "Записатися на прийом", "forms": "Бланки",
    },
    "ru": {
        "fees": "Пошлины", "required_documents": "Что взять с собой / документы",
        "office": "Ответственное ведомство", "address": "Адрес", "opening_hours": "Часы работы",
        "phone": "Телефон", "email": "Электронная почта", "online_url": "Онлайн-услуга",
        "appointment_url": "Записаться на приём", "forms": "Бланки",
    },
    "ar": {
        "fees": "الرسوم", "required_documents": "ما يجب إحضاره / المستندات",
        "office": "الجهة المختصة", "address": "العنوان", "opening_hours": "ساعات العمل",
        "phone": "الهاتف", "email": "البريد الإلكتروني", "online_url": "الخدمة الإلكترونية",
        "appointment_url": "حجز موعد", "forms": "النماذج",
    },
    "fr": {
        "fees": "Frais", "required_documents": "À apporter / documents",
        "office": "Service compétent", "address": "Adresse", "opening_hours": "Heures d'ouverture",
        "phone": "Téléphone", "email": "E-mail", "online_url": "Service en ligne",
        "appointment_url": "Prendre rendez-vous", "forms": "Formulaires",
    },
    "es": {
        "fees": "Tasas", "required_documents": "Qué llevar / documentos",
        "office": "Oficina competente", "address": "Dirección",
        "opening_hours": "Horario de atención", "phone": "Teléfono",
        "email": "Correo electrónico", "online_url": "Servicio en línea",
        "appointment_url": "Pedir cita", "forms": "Formularios",
    },
    "pl": {
        "fees": "Opłaty", "required_documents": "Co zabrać / dokumenty",
        "office": "Właściwy urząd", "address": "Adres", "opening_hours": "Godziny otwarcia",
        "phone": "Telefon", "email": "E-mail", "online_url": "Usługa online",
        "appointment_url": "Umów wizytę", "forms": "Formularze",
    },
    "it": {
        "fees": "Tariffe", "required_documents": "Cosa portare / documenti",
        "office": "Ufficio competente", "address": "Indirizzo",
        "opening_hours": "Orari di apertura", "phone": "Telefono", "email": "E-mail",
        "online_url": "Servizio online", "appointment_url": "Prenotare un appuntamento",
        "forms": "Moduli",
    },
}  # fmt: skip
# Facts whose value is a list (of strings; ``forms`` of {"title", "url"}).
LIST_FACTS = frozenset({"required_documents", "forms"})


@dataclass
class EntryData:
    """One knowledge entry as parsed from a file, before it is stored.

    ``source`` names the importer or collection (``muenchen-dldb``, ``csv``, ``markdown`` …) and
    ``external_id`` the entry inside it (catalogue id, file name, URL). Together they are the
    identity of the entry: importing the same pair again updates it, never duplicates it.
    ``body`` is plain text; paragraphs are separated by a blank line and a line starting with
    ``## `` starts a section (its heading is kept with the passages below it).
    """

    source: str
    external_id: str
    title: str
    body: str = ""
    url: str = ""
    keywords: str = ""
    leika_key: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    language: str = "de"

    def content_sha256(self) -> str:
        """Hash of everything that is stored, so an unchanged re-import is recognised."""
        payload = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
