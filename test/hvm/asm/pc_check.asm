; pc_check: a PC's checks of itself, booted by SeaBIOS from an IDE disk in
; an HVM guest (test/hvm/pc_check.test.ts). Each result is a line on COM1,
; `KEY value`, which the test reads from the serial log:
;
;   real mode   int 10h (teletype, video mode), int 13h (extensions, LBA and
;               CHS reads of a known pattern), int 15h E820, int 16h, no
;               floppy drives (CMOS 0x10, the equipment word)
;   protected   A20, a flat GDT, paging over the first 4 MiB, the PIT's IRQ0
;               counted through the 8259 PIC, an ATA READ SECTORS answered
;               by `rep insw`, and a scan of PCI bus 0 through 0xCF8/0xCFC
;
; Disk layout (512-byte sectors): 0 this boot sector, 1-15 the rest of this
; program (loaded right after this sector, at 0x7E00), from sector 100 the pattern: every 32-bit word
; of sector n holds n * 0x10000 + its index in the sector.
bits 16
org 0x7c00

STAGE2      equ 0x7e00
PATTERN_LBA equ 100
COM1        equ 0x3f8

boot:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    sti
    mov [drive], dl
    ; Load sectors 1-15 at 0x8000 with the extended read (int 13h AH=42h).
    mov si, dap_stage2
    mov ah, 0x42
    mov dl, [drive]
    int 0x13
    jc .fail
    jmp STAGE2
.fail:
    mov si, msg_loadfail
    call puts16
.halt:
    hlt
    jmp .halt

; puts16: DS:SI, a NUL-terminated string, to COM1 (waiting for THR empty).
puts16:
    push ax
    push dx
.next:
    lodsb
    test al, al
    jz .done
    mov ah, al
    mov dx, COM1 + 5
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    mov dx, COM1
    mov al, ah
    out dx, al
    jmp .next
.done:
    pop dx
    pop ax
    ret

drive:        db 0
msg_loadfail: db "LOAD failed", 13, 10, 0
dap_stage2:   db 16, 0
              dw 15          ; sectors
              dw STAGE2, 0   ; offset, segment
              dq 1           ; LBA
    times 510 - ($ - $$) db 0
    dw 0xaa55

; ---------------------------------------------------------------- stage 2
stage2:
    mov si, msg_hello
    call puts16

    ; int 10h: teletype to the screen, then the current video mode.
    mov si, msg_screen
.tty:
    lodsb
    test al, al
    jz .tty_done
    mov ah, 0x0e
    mov bx, 0x0007
    int 0x10
    jmp .tty
.tty_done:
    mov ah, 0x0f
    int 0x10
    mov si, key_video
    call puts16
    call puthex8_16
    call newline16

    ; int 13h extensions present?
    mov ah, 0x41
    mov bx, 0x55aa
    mov dl, [drive]
    int 0x13
    mov si, key_ext
    call puts16
    mov al, 0
    jc .noext
    cmp bx, 0xaa55
    jne .noext
    mov al, 1
.noext:
    call puthex8_16
    call newline16

    ; LBA read of 4 pattern sectors at 0x2000:0.
    mov si, dap_pattern
    mov ah, 0x42
    mov dl, [drive]
    int 0x13
    mov si, key_lba
    call puts16
    mov ax, 0x2000
    mov es, ax
    mov ebx, PATTERN_LBA
    mov cx, 4
    call check_pattern16
    call newline16

    ; CHS read of one pattern sector (LBA 101) from the geometry int 13h AH=08h gives.
    mov ah, 0x08
    mov dl, [drive]
    push es
    int 0x13
    pop es
    and cx, 0x3f                ; sectors per track
    mov [spt], cx
    movzx ax, dh
    inc ax
    mov [heads], ax
    mov ax, PATTERN_LBA + 1     ; LBA -> C/H/S
    xor dx, dx
    div word [spt]
    inc dx
    mov cl, dl                  ; sector
    xor dx, dx
    div word [heads]
    mov dh, dl                  ; head
    mov ch, al                  ; cylinder (low 8 bits; small disks)
    mov ax, 0x3000
    mov es, ax
    xor bx, bx
    mov ax, 0x0201
    mov dl, [drive]
    int 0x13
    mov si, key_chs
    call puts16
    mov ax, 0x3000
    mov es, ax
    mov ebx, PATTERN_LBA + 1
    mov cx, 1
    call check_pattern16
    call newline16

    ; int 15h E820: count the entries and add up the RAM.
    xor ebx, ebx
    xor bp, bp
    mov dword [ram_kb], 0
.e820:
    mov ax, 0
    mov es, ax
    mov di, e820_buf
    mov eax, 0xe820
    mov ecx, 20
    mov edx, 0x534d4150
    int 0x15
    jc .e820_done
    cmp eax, 0x534d4150
    jne .e820_done
    inc bp
    cmp dword [e820_buf + 16], 1
    jne .e820_next
    mov eax, [e820_buf + 8]
    shr eax, 10
    add [ram_kb], eax
.e820_next:
    test ebx, ebx
    jnz .e820
.e820_done:
    xor ax, ax
    mov es, ax
    mov si, key_e820
    call puts16
    mov ax, bp
    call puthex8_16
    mov si, key_ramkb
    call puts16
    mov eax, [ram_kb]
    call puthex32_16
    call newline16

    ; int 16h: is a key waiting? (none: ZF set)
    mov ah, 0x01
    int 0x16
    mov si, key_kbd
    call puts16
    mov al, 0
    jz .nokey
    mov al, 1
.nokey:
    call puthex8_16
    call newline16

    ; Floppy drives: none in this PC. The CMOS's drive types (0x10), then
    ; the floppy bits of the BIOS's equipment word (0x410: present, count - 1).
    mov al, 0x10
    out 0x70, al
    in al, 0x71
    mov bl, al
    mov si, key_fdd
    call puts16
    mov al, bl
    call puthex8_16
    mov si, key_equip
    call puts16
    mov al, [0x410]
    and al, 0xc1
    call puthex8_16
    call newline16

    ; --- into protected mode: A20, GDT, CR0.PE, a far jump to 32-bit code.
    cli
    in al, 0x92
    or al, 2
    out 0x92, al
    lgdt [gdt_desc]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp 0x08:pm32

; puthex8_16: AL as two hex digits on COM1.
puthex8_16:
    push ax
    push cx
    mov cx, 2
    rol al, 4
.d:
    push ax
    and al, 0x0f
    call hexdigit16
    pop ax
    rol al, 4
    loop .d
    pop cx
    pop ax
    ret

; puthex32_16: EAX as eight hex digits.
puthex32_16:
    push eax
    push cx
    mov cx, 8
.d:
    rol eax, 4
    push eax
    and al, 0x0f
    call hexdigit16
    pop eax
    loop .d
    pop cx
    pop eax
    ret

hexdigit16:
    push si
    add al, '0'
    cmp al, '9'
    jbe .ok
    add al, 'a' - '9' - 1
.ok:
    mov [onechar], al
    mov si, onechar
    call puts16
    pop si
    ret

newline16:
    push si
    mov si, crlf
    call puts16
    pop si
    ret

; check_pattern16: ES:0 holds CX sectors from LBA EBX: print "ok" or "bad".
check_pattern16:
    push si
    xor di, di
.sector:
    mov eax, ebx
    shl eax, 16
    mov dx, 128
.word:
    cmp [es:di], eax
    jne .bad
    add di, 4
    inc eax
    dec dx
    jnz .word
    inc ebx
    loop .sector
    mov si, val_ok
    call puts16
    pop si
    ret
.bad:
    mov si, val_bad
    call puts16
    pop si
    ret

; ---------------------------------------------------------------- 32-bit
bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7c00
    mov esi, msg_pm
    call puts32

    ; Paging: one page table mapping the first 4 MiB to itself.
    mov edi, 0x50000            ; page directory
    mov ecx, 1024
    xor eax, eax
    rep stosd
    mov edi, 0x51000            ; page table
    mov eax, 0x003              ; present, writable
    mov ecx, 1024
.pte:
    stosd
    add eax, 0x1000
    loop .pte
    mov dword [0x50000], 0x51003
    mov eax, 0x50000
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp .paged
.paged:
    mov esi, key_paging
    call puts32
    mov eax, cr0
    shr eax, 31
    call puthex8_32
    call newline32

    ; The 8259s at vectors 0x20/0x28, IRQ0 only; the PIT at 1 kHz; count ticks.
    mov al, 0x11
    out 0x20, al
    out 0xa0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xa1, al
    mov al, 4
    out 0x21, al
    mov al, 2
    out 0xa1, al
    mov al, 1
    out 0x21, al
    out 0xa1, al
    mov al, 0xfe                ; only IRQ0
    out 0x21, al
    mov al, 0xff
    out 0xa1, al
    mov eax, irq0
    mov [idt + 0x20 * 8], ax
    shr eax, 16
    mov [idt + 0x20 * 8 + 6], ax
    mov word [idt + 0x20 * 8 + 2], 0x08
    mov word [idt + 0x20 * 8 + 4], 0x8e00
    lidt [idt_desc]
    mov al, 0x34                ; channel 0, lobyte/hibyte, rate generator
    out 0x43, al
    mov ax, 1193                ; 1193182 Hz / 1193 = 1 kHz
    out 0x40, al
    mov al, ah
    out 0x40, al
    sti
.ticks:
    hlt
    cmp dword [ticks], 100
    jb .ticks
    cli
    mov esi, key_irq0
    call puts32
    mov eax, [ticks]
    call puthex32_32
    call newline32

    ; ATA READ SECTORS of LBA 102 on the primary master, data by `rep insw`.
    mov dx, 0x1f6
    mov al, 0xe0                ; LBA, master, bits 24-27 = 0
    out dx, al
    mov dx, 0x1f2
    mov al, 1
    out dx, al
    mov dx, 0x1f3
    mov al, PATTERN_LBA + 2
    out dx, al
    mov dx, 0x1f4
    xor al, al
    out dx, al
    mov dx, 0x1f5
    out dx, al
    mov dx, 0x1f7
    mov al, 0x20
    out dx, al
.busy:
    in al, dx
    test al, 0x80
    jnz .busy
    test al, 0x08
    jz .busy
    mov dx, 0x1f0
    mov edi, 0x60000
    mov ecx, 256
    rep insw
    mov esi, key_pio
    call puts32
    mov edi, 0x60000
    mov eax, (PATTERN_LBA + 2) << 16
    mov ecx, 128
.cmp:
    cmp [edi], eax
    jne .pio_bad
    add edi, 4
    inc eax
    loop .cmp
    mov esi, val_ok
    jmp .pio_done
.pio_bad:
    mov esi, val_bad
.pio_done:
    call puts32
    call newline32

    ; PCI bus 0, configuration mechanism #1: every function's vendor:device.
    xor ebx, ebx                ; device << 3 | function
.pci:
    mov eax, ebx
    shl eax, 8
    or eax, 0x80000000
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    cmp ax, 0xffff
    je .pci_next
    push eax
    mov esi, key_pci
    call puts32
    mov eax, ebx
    call puthex8_32
    mov esi, space
    call puts32
    pop eax
    call puthex32_32
    call newline32
.pci_next:
    inc ebx
    cmp ebx, 256
    jb .pci

    mov esi, msg_done
    call puts32
.end:
    cli
    hlt
    jmp .end

irq0:
    inc dword [ticks]
    push eax
    mov al, 0x20
    out 0x20, al
    pop eax
    iret

puts32:
    push eax
    push edx
.next:
    lodsb
    test al, al
    jz .done
    mov ah, al
    mov dx, COM1 + 5
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    mov dx, COM1
    mov al, ah
    out dx, al
    jmp .next
.done:
    pop edx
    pop eax
    ret

puthex8_32:
    push eax
    push ecx
    mov ecx, 2
    rol al, 4
.d:
    push eax
    and al, 0x0f
    call hexdigit32
    pop eax
    rol al, 4
    loop .d
    pop ecx
    pop eax
    ret

puthex32_32:
    push eax
    push ecx
    mov ecx, 8
.d:
    rol eax, 4
    push eax
    and al, 0x0f
    call hexdigit32
    pop eax
    loop .d
    pop ecx
    pop eax
    ret

hexdigit32:
    push esi
    add al, '0'
    cmp al, '9'
    jbe .ok
    add al, 'a' - '9' - 1
.ok:
    mov [onechar], al
    mov esi, onechar
    call puts32
    pop esi
    ret

newline32:
    push esi
    mov esi, crlf
    call puts32
    pop esi
    ret

; ---------------------------------------------------------------- data
align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff       ; 0x08 code, flat 4 GiB, 32-bit
    dq 0x00cf92000000ffff       ; 0x10 data, flat 4 GiB
gdt_desc:
    dw gdt_desc - gdt - 1
    dd gdt
idt_desc:
    dw 256 * 8 - 1
    dd idt
dap_pattern:
    db 16, 0
    dw 4
    dw 0, 0x2000
    dq PATTERN_LBA
spt:    dw 0
heads:  dw 0
ram_kb: dd 0
ticks:  dd 0
e820_buf: times 24 db 0
onechar: db 0, 0
crlf:   db 13, 10, 0
space:  db " ", 0
val_ok: db "ok", 0
val_bad: db "bad", 0
msg_hello:  db "PCCHECK start", 13, 10, 0
msg_screen: db "pc_check: int 10h teletype", 13, 10, 0
msg_pm:     db "PM on", 13, 10, 0
msg_done:   db "PCCHECK done", 13, 10, 0
key_video:  db "VIDEO mode ", 0
key_ext:    db "INT13EXT ", 0
key_lba:    db "INT13LBA ", 0
key_chs:    db "INT13CHS ", 0
key_e820:   db "E820 entries ", 0
key_ramkb:  db " ramkb ", 0
key_kbd:    db "INT16 key ", 0
key_fdd:    db "FLOPPY cmos ", 0
key_equip:  db " equipment ", 0
key_paging: db "PAGING ", 0
key_irq0:   db "IRQ0 ticks ", 0
key_pio:    db "PIO rep insw ", 0
key_pci:    db "PCI ", 0
align 16
idt: times 256 * 8 db 0
    times 16 * 512 - ($ - $$) db 0
